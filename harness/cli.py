"""The ``harness`` command.

    harness list                                   algorithms, reward models, evaluators, benchmarks, plugin commands
    harness run --algo ppo [--no-kl] [--seeds 0 1 2] [--budget N] [--benchmark B] [--reward-model R]
    harness sweep sweeps/leaderboard.yaml          a grid of algorithms × benchmarks × seeds, then its tables
    harness runs | show RUN | samples | leaderboard [--format md|csv|html|latex] [--code-versions latest|pool|each]
    harness reward-models pairwise ranking         held-out accuracy of reward models at equal annotation budgets
    harness plot [--kind frontier|overoptimisation|curves|all] [--metric KEY ...]   gold vs KL, proxy vs gold, curves (PNG, SVG)
    harness fit [--benchmark B] [--format md|csv|html]   Gao et al.'s over-optimisation forms fitted, with bootstrap CIs
    harness report [--out results/report.html] [--sweep FILE]   one standalone HTML page: tables, plots, fits, samples
    harness cache ls | clear
    harness bench ppo                              speed benchmarks that plugins add (harness bench lists them)

Every command takes --debug (or $HARNESS_DEBUG=1): an error then shows its traceback. Exit codes:
0 done, 1 a fault (a run failed, a folder not writable, a full disk, a bug), 2 a mistake in the
command or its files, 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import warnings
from pathlib import Path

from harness.config import ascii_int, non_negative_int, positive_int
from harness.errors import FaultError, Terminated, UsageError, did_you_mean

PROG = "harness"
STORE_ENV = "HARNESS_STORE"
#: set (to anything but 0) for the traceback of an error, as ``--debug`` does
DEBUG_ENV = "HARNESS_DEBUG"
#: flags that were renamed: an old spelling gets a pointer to the new one
RENAMED_FLAGS = {"--bench": "--benchmark-set KEY=VALUE", "--kl": "--kl-coef (or --no-kl)", "--objective": "--algo rrhf"}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors, "did you mean" for unknown flags, and no abbreviations
    (a plugin's ``--reward`` must never be taken for ``--reward-model``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            flags = [a for a in self._option_string_actions if a.startswith("--")]
            unknown = [u.split("=")[0] for u in message.split(":", 1)[1].split() if u.startswith("-")]
            hints = [f" ({u} is now {RENAMED_FLAGS[u]})" if u in RENAMED_FLAGS else did_you_mean(u, flags) for u in unknown]
            message = f"{message}{''.join(h for h in hints if h)}"
        raise UsageError(f"{message} (see {self.prog} --help)")


def _seed(text: str) -> int:
    value = ascii_int(text, "an integer seed")
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seeds must be in 0 .. 2^63 - 1, got {value}")
    return value


def _default_store() -> str:
    return os.environ.get(STORE_ENV, "results/store.sqlite")


def _without_plugin_flags(argv: list[str]) -> list[str]:
    """``argv`` less its ``--plugin X`` / ``--plugin=X`` (the CLI's, not a plugin command's)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--plugin":
            skip = True
        elif not arg.startswith("--plugin="):
            out.append(arg)
    return out


def _plugins_from_argv(argv: list[str]) -> list[str]:
    """``--plugin X`` may appear anywhere; plugins must load before flags are known."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


def _host(argv: list[str]):
    from harness.plugin_manager import load_plugins

    requested = _plugins_from_argv(argv)
    host = load_plugins(requested, core_commands=CORE_COMMANDS)
    for err in host.errors:  # a plugin the user named is theirs to fix; an installed one that broke is a warning
        if err.plugin in requested:
            raise UsageError(f"--plugin {err.plugin}: not loaded: {err.error}")
    host.report_errors()
    return host


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="load a plugin file or module (repeatable; also $HARNESS_PLUGINS)")  # fmt: skip


def _store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=_default_store(), help="results store: an SQLite file or a database URL, postgresql://user@host/db "
                        "(default: %(default)s; $HARNESS_STORE)")  # fmt: skip


#: the trackers ``--report-to`` accepts (the ``trackers`` plugin, plugins/trackers.py, reads the variable);
#: each one's package and pip extra, ``rlhf-harness[NAME]``, carry its name
REPORT_TO = ("tensorboard", "wandb")
REPORT_TO_ENV = "HARNESS_REPORT_TO"


def _report_to(text: str) -> str:
    """``--report-to`` (default ``$HARNESS_REPORT_TO``): comma-separated trackers, or ``none``. An unknown
    name or a tracker that is not installed is a one-line error before any run; the value is exported
    to ``$HARNESS_REPORT_TO``, which the trackers plugin reads as each run starts (and subprocesses inherit)."""
    import importlib.util

    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip().lower() not in ("", "none")))
    for name in names:
        if name not in REPORT_TO:
            raise UsageError(f"--report-to (or ${REPORT_TO_ENV}): unknown tracker {name!r}{did_you_mean(name, REPORT_TO)}; "
                             f"valid: {', '.join(REPORT_TO)}, none")  # fmt: skip
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"--report-to {name}: {name} is not installed; pip install 'rlhf-harness[{name}]'")
    os.environ[REPORT_TO_ENV] = ",".join(names) or "none"
    return os.environ[REPORT_TO_ENV]


def _workspace_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("--results-dir", default="results", help="where run folders go (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="stage cache (default: $HARNESS_CACHE_DIR or ~/.cache/rlhf-harness)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--report-to", type=_report_to, default=os.environ.get(REPORT_TO_ENV) or None, metavar="NAMES",
                        help="log every run to trackers: tensorboard, wandb (comma-separated) or none "
                             "(default: $HARNESS_REPORT_TO, else none; into each run folder)")  # fmt: skip
    _common(parser)


def writable_folder(path: str | Path, flag: str) -> Path:
    """Check, before any work starts, that files can be written in folder ``path`` (a run must
    not build a benchmark for a minute and then find it cannot save). Folders the check makes
    are removed again: a command that stops later leaves nothing behind."""
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder")
    made = next((p for p in [*reversed(path.parents), path] if not p.exists()), None)  # the first folder to make
    try:
        for attempt in range(5):
            try:
                path.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path, prefix=".harness-write-check-"):
                    pass
                break
            except FileNotFoundError:  # another process's check (a data-parallel rank's) removed the folder meanwhile
                if attempt == 4:
                    raise
    except NotADirectoryError:  # a file on the way: the command's mistake
        raise UsageError(f"{flag} {path}: a file stands where a folder of the path should be") from None
    except OSError as exc:  # read-only, no permission, full: the environment's
        raise FaultError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    finally:  # rmdir, never rmtree: another process may already be writing into a folder made here
        for folder in [path, *path.parents] if made is not None else []:
            try:
                folder.rmdir()
            except OSError:
                break
            if folder == made:
                break
    return path


def _workspace(host, args):
    from harness.pipeline.cache import CACHE_ENV, StageCache
    from harness.running.runner import Workspace

    writable_folder(args.results_dir, "--results-dir")
    cache = StageCache(args.cache_dir)
    writable_folder(cache.root, "--cache-dir" if args.cache_dir else f"the stage cache (${CACHE_ENV})")
    return Workspace(host, store=args.store, results_dir=args.results_dir, cache=cache,
                     device=args.device, quiet=args.quiet)  # fmt: skip


# -------------------------------------------------------------------------
# harness run
# -------------------------------------------------------------------------


def _run_base_parser(add_help: bool) -> ArgumentParser:
    parser = ArgumentParser(prog=f"{PROG} run", add_help=add_help, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Train one algorithm on one benchmark, per seed; evaluate on held-out prompts; store.")  # fmt: skip
    parser.add_argument("--algo", default="ppo", help="algorithm to run (harness list shows them; default: %(default)s)")
    parser.add_argument("--benchmark", default="sentiment", help="benchmark (default: %(default)s)")
    parser.add_argument("--reward-model", default="pairwise", help="proxy reward model to optimize (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=_seed, default=[0], metavar="SEED", help="one run per distinct seed (default: 0)")
    parser.add_argument("--budget", type=positive_int, default=None, help="training episodes (default: the benchmark's)")
    parser.add_argument("--benchmark-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a benchmark setting (repeatable; the list is below)")  # fmt: skip
    parser.add_argument("--policy-model", metavar="ID_OR_PATH",
                        help="start π_sft from this causal LM (hub id or local folder): --benchmark-set policy_model=…")  # fmt: skip
    parser.add_argument("--reward-model-base", metavar="ID_OR_PATH",
                        help="initialise reward models from this causal LM, not π_sft: --benchmark-set reward_model_base=…")  # fmt: skip
    parser.add_argument("--num-processes", type=positive_int, default=1, metavar="N",
                        help="train each run data-parallel in N processes on this machine (one per GPU, or CPU "
                             "processes with gloo); every built-in algorithm, and plugins that declare data_parallel (default: %(default)s)")  # fmt: skip
    _workspace_args(parser)
    return parser


def _benchmark_epilog(name: str, cls) -> str:
    from harness.config import field_help

    lines = [f"benchmark {name!r} settings (--benchmark-set KEY=VALUE), with their defaults:"]
    lines += [f"  {f'{key}={default!r}':<30} {text}" for key, default, text in field_help(cls.Config)]
    return "\n".join(lines)


def _benchmark_settings(args) -> list[str]:
    """``--benchmark-set`` items, with the shorthand flags spelt out (the same spec either way)."""
    shorthand = {"policy_model": args.policy_model, "reward_model_base": args.reward_model_base}
    return list(args.benchmark_set) + [f"{key}={value}" for key, value in shorthand.items() if value]


def parse_run(argv: list[str], host=None):
    """``harness run`` arguments → (plugin host, run specs, parsed args); every mistake is a
    :class:`UsageError`. ``host``: plugins already loaded."""
    from harness.config import add_dataclass_arguments, build_config, parse_overrides
    from harness.running.spec import EvaluationSettings, make_specs

    host = host or _host(argv)
    known, _ = _run_base_parser(add_help=False).parse_known_args([a for a in argv if a not in ("-h", "--help")])
    algo = host.algorithms.get(known.algo)
    rm = host.reward_models.get(known.reward_model)
    bench = host.benchmarks.get(known.benchmark)

    parser = _run_base_parser(add_help=True)
    parser.epilog = _benchmark_epilog(known.benchmark, bench.cls)
    for action in parser._actions:
        if action.dest == "budget":
            action.help = f"training episodes (default: the benchmark's default_budget, {bench.cls.Config().default_budget})"
    add_dataclass_arguments(parser, algo.cls.Config, title=f"{known.algo} options")
    add_dataclass_arguments(parser, rm.cls.Config, prefix="rm_", title=f"reward model {known.reward_model!r} options")
    add_dataclass_arguments(parser, EvaluationSettings, prefix="eval_", title="evaluation options")
    args = parser.parse_args(argv)
    specs = make_specs(
        host,
        benchmark=args.benchmark,
        bench_config=parse_overrides(bench.cls.Config, _benchmark_settings(args), what=f"--benchmark-set ({args.benchmark})"),
        algorithm=args.algo,
        algo_config=build_config(algo.cls.Config, args, what=f"--algo {args.algo}"),
        reward_model=args.reward_model,
        rm_config=build_config(rm.cls.Config, args, prefix="rm_", what=f"--reward-model {args.reward_model}"),
        budget=args.budget,
        evaluation=build_config(EvaluationSettings, args, prefix="eval_", what="evaluation"),
        seeds=args.seeds,
    )
    return host, specs, args


def cmd_run(argv: list[str]) -> int:
    from harness.running import distributed
    from harness.running.runner import resolve_device, run

    host, specs, args = parse_run(argv)
    # data-parallel (#10): --num-processes N starts N copies of this command; a copy (or a command under
    # accelerate launch / torchrun) finds WORLD_SIZE set, joins the process group and runs as its rank
    n, launched = args.num_processes, distributed.world_size_from_env()
    if launched > 1 and n not in (1, launched):
        raise UsageError(f"--num-processes {n}, but the launcher started {launched} processes")
    if max(n, launched) > 1:
        distributed.check_algorithm(host, specs, max(n, launched))
        if launched == 1:
            _workspace(host, args).close()  # the folders' checks, before any process starts
            return distributed.launch(argv, n)
        args.device = str(distributed.init(resolve_device(args.device)))
        args.quiet = args.quiet or not distributed.state().is_main
        run = distributed.run
    try:
        with _workspace(host, args) as workspace:
            results = []
            for spec in specs:
                results.append(run(spec, workspace))
                if distributed.state().is_main:
                    _print_result(results[-1])
    finally:
        distributed.close()
    if not distributed.state().is_main:  # rank 0 stores and reports the run's status; a crash here raised above
        return 0
    return 0 if all(r.status in ("finished", "skipped") for r in results) else 1


def _value(value: float | None, fmt: str = " .4f") -> str:
    """A metric as text; "–" (not measured) for NaN or ``None``, e.g. gold on a benchmark without r*."""
    return " –" if value is None or math.isnan(value) else format(value, fmt)


def _print_result(r) -> None:
    print(f"run {r.run_id}  {r.name}  {r.status}  (key {r.spec.experiment_key[:8]}, seed {r.seed})")  # the leaderboard's key
    if r.error:
        print(f"  {'note' if r.status == 'skipped' else 'error'}: {r.error}")
    if r.status == "finished":
        for key in sorted(r.metrics):
            if key.startswith("eval/"):
                print(f"  {key:<18} {_value(r.metrics[key])}")


# -------------------------------------------------------------------------
# the other commands
# -------------------------------------------------------------------------


def cmd_list(argv: list[str]) -> int:
    parser = ArgumentParser(prog=f"{PROG} list", description="Everything the loaded plugins registered.")
    _common(parser)
    parser.parse_args(argv)
    host = _host(argv)
    for title, entries in [("algorithms", host.algorithms.entries()), ("reward models", host.reward_models.entries()),
                           ("evaluators", host.evaluators.entries()), ("benchmarks", host.benchmarks.entries())]:  # fmt: skip
        print(f"{title}:")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            print(f"  {e.name:<{width}}  {e.description}  [{e.plugin}]")
    commands = host.commands.entries()
    if commands:
        print("commands:")
        width = max(len(c.name) for c in commands)
        for c in commands:
            print(f"  harness {c.name:<{width}}  {c.help}  [{c.plugin}]")
    if host.errors:
        print("plugins that failed to load:")
        for err in host.errors:
            print(f"  {err.plugin}: {err.error}")
    return 0


def _existing_store(path: str) -> str:
    from harness.results.store import is_url

    if not is_url(path) and not Path(path).exists():
        raise UsageError(f"no store at {path}; `harness run` creates one (or pass --store)")
    return path


def cmd_runs(argv: list[str]) -> int:
    from harness.results.store import STATUSES, Store

    parser = ArgumentParser(prog=f"{PROG} runs", description="List stored runs.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--algo")
    parser.add_argument("--status", help=f"one of {', '.join(STATUSES)}")
    parser.add_argument("--key", help="a prefix of a spec key or experiment key (the `key` column; leaderboard CSVs carry it)")
    parser.add_argument("--mark-interrupted", metavar="RUN", help="mark a `running` run whose process is gone (e.g. on a lost "
                        "host) as interrupted, so that its seed can run again")  # fmt: skip
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        for run_id in store.interrupt_orphans():  # left `running` by a process that died (kill -9)
            print(f"run {run_id}: its process is gone; marked interrupted", file=sys.stderr)
        if args.mark_interrupted:
            run = store.mark_interrupted(args.mark_interrupted, "marked interrupted by hand (harness runs --mark-interrupted)")
            print(f"run {run.run_id} marked interrupted")
            return 0
        runs = store.list_runs(benchmark=args.benchmark, algorithm=args.algo, status=args.status, key=args.key)
        if not runs:
            print(f"no runs in {args.store} match")
            return 0
        keys = [_short_key(r.experiment_key) for r in runs]
        width = max(len(k) for k in keys)
        print(f"{'run':<12}  {'key':<{width}}  {'benchmark':<11} {'algorithm':<12} {'seed':>4}  {'status':<11} {'gold':>7}  {'kl':>7}  {'wall s':>7}")
        for r, key in zip(runs, keys):
            gold, kl = r.metrics.get("eval/gold", float("nan")), r.metrics.get("eval/kl", float("nan"))
            wall = r.wall_seconds if r.wall_seconds is not None else float("nan")
            print(f"{r.run_id:<12}  {key:<{width}}  {r.benchmark:<11} {r.algorithm:<12} {r.seed:>4}  {r.status:<11} "
                  f"{gold:>7.3f}  {kl:>7.3f}  {wall:>7.1f}")  # fmt: skip
    return 0


def _short_key(key: str) -> str:
    """The first 8 characters of a key (after ``legacy-`` for a run migrated from an older store)."""
    from harness.results.store import LEGACY_PREFIX

    return key[: len(LEGACY_PREFIX) + 8] if key.startswith(LEGACY_PREFIX) else key[:8]


def cmd_show(argv: list[str]) -> int:
    from harness.results.store import Store
    from harness.running.runner import run_times

    parser = ArgumentParser(prog=f"{PROG} show", description="Show one run: spec, metrics, curve summary, samples.")
    parser.add_argument("run", help="run id or a unique prefix of it")
    parser.add_argument("--samples", type=non_negative_int, default=5, help="samples to print (default: %(default)s)")
    _store_arg(parser)
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        r = store.get_run(args.run)
        print(f"run {r.run_id}  {r.name}\n  status: {r.status}" + (f"  error: {r.error}" if r.error else ""))
        print(f"  benchmark: {r.benchmark} v{r.benchmark_version}  algorithm: {r.algorithm}  reward model: {r.reward_model}"
              f"{' (oracle)' if r.rm_is_oracle else ''}  seed: {r.seed}")  # fmt: skip
        print(f"  spec key: {r.spec_key}  experiment key: {r.experiment_key}  code: {r.code_version}")
        print(f"  spec: {json.dumps(r.spec.identity(with_code=False), sort_keys=True)}")
        print(f"  budget: {r.budget} episodes; used {json.dumps(r.budget_used)}  wall: {r.wall_seconds}s  folder: {r.run_dir}")
        if times := run_times(r.run_dir):  # where the wall time went, as the run folder's run.json records it
            print("  time: " + ", ".join(f"{key.removesuffix('_s')} {seconds:.1f} s" for key, seconds in times.items()))
        if r.metrics:
            print("metrics:")
            for key in sorted(r.metrics):
                print(f"  {key:<24} {_value(r.metrics[key])}")
        curves = store.curves(r.run_id)
        if len(curves):
            print(f"training curve: {len(curves)} steps; last step:")
            last = curves.iloc[-1]
            for key in curves.columns:
                if key != "step":
                    print(f"  {key:<28} {last[key]: .4f}")
        for s in store.samples(r.run_id, limit=args.samples):
            print(f"sample (gold {_value(s['gold'], '+.3f')}, proxy {_value(s['proxy'], '+.3f')}): {s['prompt']} ▸ {s['response']}")
    return 0


def cmd_samples(argv: list[str]) -> int:
    """Stored held-out generations, one section per finished run: what each policy writes."""
    from harness.results.plots import check_benchmark
    from harness.results.reports import samples_markdown
    from harness.results.store import Store

    parser = ArgumentParser(prog=f"{PROG} samples", description="Held-out samples of finished runs, as markdown.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--algo")
    parser.add_argument("--key", help="a prefix of a spec key or experiment key")
    parser.add_argument("--seed", type=_seed, default=None, help="only runs with this seed")
    parser.add_argument("-n", type=positive_int, default=4, help="samples per run (default: %(default)s)")
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        check_benchmark(store, args.benchmark)
        runs = store.list_runs(benchmark=args.benchmark, algorithm=args.algo, status="finished", key=args.key)
        runs = [r for r in runs if args.seed is None or r.seed == args.seed]
        print(samples_markdown(runs, store.samples, args.n), end="")
    return 0


def cmd_leaderboard(argv: list[str]) -> int:
    from harness.results.leaderboard import FORMATS, build_leaderboard, render, write_leaderboard
    from harness.results.plots import check_benchmark
    from harness.results.store import Store

    parser = ArgumentParser(prog=f"{PROG} leaderboard", description="Mean and 95%% CI over seeds, one row per experiment.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default: %(default)s)")
    parser.add_argument("--code-versions", default="latest", help="runs of one experiment made by different code: "
                        "latest (the newest code's runs; the others are counted, not pooled), pool, or each (a row per "
                        "code version) (default: %(default)s)")  # fmt: skip
    parser.add_argument("--out", default=None, help="also write LEADERBOARD.md and leaderboard.csv into this folder (with "
                        "--format html, also report.html: the standalone page of harness report)")  # fmt: skip
    parser.add_argument("--baseline", metavar="ROW", default=None, help="mark every other row of each table better (▲), "
                        "worse (▼) or not distinguishable (≈) from this one on each metric, by Welch's t over seeds and a "
                        "paired bootstrap over held-out prompts (Holm–Bonferroni, α = 0.05): a row's algorithm, e.g. sft, "
                        "qualified where a table has several rows of it, e.g. 'ppo (reward_model=pairwise)'")  # fmt: skip
    args = parser.parse_args(argv)
    if args.out == "":
        raise UsageError("--out '': expected a folder for LEADERBOARD.md and leaderboard.csv")
    if args.out:
        writable_folder(args.out, "--out")
    with Store(_existing_store(args.store)) as store:
        check_benchmark(store, args.benchmark)
        frame = store.metrics_frame(benchmark=args.benchmark)
        # the paired bootstrap reads the runs' stored samples: built while the store is open
        table = build_leaderboard(frame, code_versions=args.code_versions, baseline=args.baseline, samples=store.samples)
        written = write_leaderboard(table, Path(args.out)) if args.out else []
        if args.out and args.format == "html":  # the page: tables, plots, fits and samples, standalone
            from harness.results.html_report import write_report

            written.append(write_report(store, Path(args.out) / "report.html", benchmark=args.benchmark))
    print(render(table, args.format), end="")
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_plot(argv: list[str]) -> int:
    """Figures from the store as PNG and SVG: the gold-vs-KL frontier, proxy vs gold over KL, training curves."""
    from harness.results.plots import KINDS, plot_store
    from harness.results.store import Store

    parser = ArgumentParser(prog=f"{PROG} plot", description="Figures from the store, as PNG and SVG: frontier_<benchmark> "
                            "(gold reward vs √KL per run and configuration, best-of-n, π_sft), overoptimisation_<benchmark> "
                            "(proxy and gold gains vs √KL, a panel per configuration), curves_<benchmark>_<metric> (a logged "
                            "training metric, mean ± 95% CI over seeds).")  # fmt: skip
    _store_arg(parser)
    parser.add_argument("--benchmark", help="only this benchmark (default: every one in the store)")
    parser.add_argument("--out", default="results/plots", help="folder for the files (default: %(default)s)")
    parser.add_argument("--kind", default="all", help=f"one of {', '.join(KINDS)} (default: %(default)s)")
    parser.add_argument("--metric", nargs="+", action="extend", default=None, metavar="KEY",
                        help="training curves of these logged keys, e.g. objective/kl loss/policy (default: objective/scores "
                             "and objective/kl, where logged)")  # fmt: skip
    args = parser.parse_args(argv)
    writable_folder(args.out, "--out")
    with Store(_existing_store(args.store)) as store:
        paths, notes = plot_store(store, Path(args.out), kind=args.kind, metrics=args.metric, benchmark=args.benchmark)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for path in paths:
        print(path)
    return 0


def cmd_fit(argv: list[str]) -> int:
    """Gao et al.'s over-optimisation forms fitted to the stored trajectories, as a table."""
    from harness.results.fits import FIT_FORMATS, fit_table, render_fit_table
    from harness.results.plots import check_benchmark, fit_points, load_trajectories
    from harness.results.store import Store

    parser = ArgumentParser(prog=f"{PROG} fit", description="Fit Gao, Schulman & Hilton (2022)'s forms to every configuration's "
                            "gold-vs-KL trajectory: R(d) = d(α − β log d) along RL training, R(d) = d(α − β d) for best-of-n, "
                            "d = √KL(π‖π_sft), R the gold gained over π_sft; α, β, R², the d and KL where gold peaks, with "
                            "bootstrap CIs over seeds. A configuration with too few points is refused, saying why.")  # fmt: skip
    _store_arg(parser)
    parser.add_argument("--benchmark", help="only this benchmark (default: every one in the store)")
    parser.add_argument("--format", default="md", choices=FIT_FORMATS)
    parser.add_argument("--bootstrap", type=positive_int, default=1000, metavar="B", help="bootstrap refits (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the table here instead of printing it")
    args = parser.parse_args(argv)
    if args.out is not None:
        writable_folder(args.out.parent, "--out")
    with Store(_existing_store(args.store)) as store:
        check_benchmark(store, args.benchmark)
        points = fit_points(load_trajectories(store, args.benchmark))
    if points.empty:
        raise UsageError("no trajectories to fit: no run in the store recorded checkpoints (--eval-checkpoint-every) or a best-of-n curve")
    text = render_fit_table(fit_table(points, n_boot=args.bootstrap, seed=0), args.format)
    if args.out is None:
        print(text)
    else:
        from harness.results.leaderboard import write_atomically

        print(write_atomically(args.out, text))
    return 0


def cmd_report(argv: list[str]) -> int:
    """One standalone HTML page: leaderboards, inline SVG plots, fits, samples, the sweep and manifests."""
    from harness.results.html_report import SAMPLES_PER_RUN, write_report
    from harness.results.store import Store

    parser = ArgumentParser(prog=f"{PROG} report", description="One standalone HTML page (nothing loaded from a network): "
                            "the leaderboards, the plots inline, the over-optimisation fits, a few samples per run, the "
                            "sweep's command and file, and the runs' manifests.")  # fmt: skip
    _store_arg(parser)
    parser.add_argument("--out", default="results/report.html", help="the page to write (default: %(default)s)")
    parser.add_argument("--benchmark", help="only this benchmark (default: every one in the store)")
    parser.add_argument("--sweep", type=Path, default=None, metavar="FILE", help="show this sweep file and its command")
    parser.add_argument("--samples", type=positive_int, default=SAMPLES_PER_RUN, metavar="N",
                        help="stored samples shown per run (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if not Path(args.out).name:
        raise UsageError(f"--out {args.out!r}: expected a file name, e.g. results/report.html")
    writable_folder(Path(args.out).parent, "--out")
    with Store(_existing_store(args.store)) as store:
        path = write_report(store, Path(args.out), benchmark=args.benchmark, sweep_file=args.sweep, samples_per_run=args.samples)
    print(path)
    return 0


def cmd_cache(argv: list[str]) -> int:
    from harness.pipeline.cache import CACHE_ENV, STAGES, StageCache

    parser = ArgumentParser(prog=f"{PROG} cache", description="The stage cache (pretrained models, SFT, RM data, RMs).")
    parser.add_argument("action", choices=["ls", "clear"])
    parser.add_argument("--stage", default=None, choices=STAGES, help="only this stage")
    parser.add_argument("--cache-dir", default=None, help=f"the cache (default: ${CACHE_ENV} or ~/.cache/rlhf-harness)")
    args = parser.parse_args(argv)
    cache = StageCache(args.cache_dir)
    if cache.root.exists() and not cache.root.is_dir():
        raise UsageError(f"{'--cache-dir' if args.cache_dir else f'${CACHE_ENV}'} {cache.root}: is a file, not a folder")
    if args.action == "ls":
        entries = cache.entries()
        print(f"cache: {cache.root}")
        for e in entries:
            if args.stage in (None, e["stage"]):
                built = f"built in {e['seconds']}s" if e["status"] == "ok" else f"damaged ({e['damage']}): rebuilt on next use (cache clear removes it)"
                print(f"  {e['stage']:<13} {e['key']}  {e['bytes'] / 1e6:7.2f} MB  {built}")
        for tmp in cache.abandoned():
            print(f"  {tmp.parent.name:<13} {tmp.name}  abandoned build (its process is gone; cache clear removes it)")
        if not entries:
            print("  (empty)")
    else:
        print(f"removed {cache.clear(args.stage)} folder(s) from {cache.root}")
    return 0


def cmd_sweep(argv: list[str]) -> int:
    from harness.running.sweep import load_sweep, run_sweep, write_sweep_reports

    parser = ArgumentParser(prog=f"{PROG} sweep", description="Run a grid (benchmarks × algorithm configs × seeds) from a YAML file.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--out", default="results", help="where the tables go (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the runs, run nothing")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: one run at a time in this process; ray: each run a Ray task (default: %(default)s)")
    parser.add_argument("--address", default=None, help="--executor ray: the cluster, auto or ray://HOST:PORT "
                        "(default: $RAY_ADDRESS, else a Ray started on this machine)")
    parser.add_argument("--max-retries", type=non_negative_int, default=None, metavar="N",
                        help="--executor ray: retries of a run whose worker died (default: 3)")  # fmt: skip
    _workspace_args(parser)
    args = parser.parse_args(argv)
    if args.executor != "ray" and (args.address is not None or args.max_retries is not None):
        raise UsageError("--address and --max-retries go with --executor ray")
    host = _host(argv)
    sweep = load_sweep(args.file, host)  # every cell is checked before any runs
    if not args.dry_run:
        writable_folder(args.out, "--out")  # the tables come last: found unwritable after an hour of runs is too late
    if args.device == "auto":
        args.device = sweep.device
    executor = None  # local
    if args.executor == "ray":
        from harness.running.executors import DEFAULT_MAX_RETRIES, RayExecutor

        executor = RayExecutor(address=args.address, plugins=tuple(_plugins_from_argv(argv)), device=args.device,
                               max_retries=DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries)  # fmt: skip
    with _workspace(host, args) as workspace:
        outcome = run_sweep(sweep, workspace, dry_run=args.dry_run, executor=executor)
        if args.dry_run:
            return 0
        for path in write_sweep_reports(sweep, workspace, Path(args.out), command=f"harness sweep {args.file}"):
            print(f"wrote {path}", file=sys.stderr)
    return 1 if outcome.failed else 0


def cmd_data(argv: list[str]) -> int:
    from harness.data.cli import data_command

    return data_command(argv)


def cmd_reward_models(argv: list[str]) -> int:
    """Held-out quality of reward models fitted on one benchmark's annotations (cached fits)."""
    from harness.config import parse_overrides
    from harness.pipeline.cache import StageCache
    from harness.pipeline.stages import prepare
    from harness.results.reports import reward_models_markdown
    from harness.running.reward_fit import reward_model_rows
    from harness.running.runner import resolve_device

    parser = ArgumentParser(prog=f"{PROG} reward-models", description="Compare reward models at their annotation budgets.")
    parser.add_argument("names", nargs="*", default=["pairwise", "ranking"], help="reward models (default: pairwise ranking)")
    parser.add_argument("--benchmark", default="sentiment")
    parser.add_argument("--benchmark-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rm", action="append", default=[], metavar="NAME:KEY=VALUE", help="a reward model's setting, e.g. ranking:k=6")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quiet", action="store_true")
    _common(parser)
    args = parser.parse_args(argv)
    host = _host(argv)
    for item in args.rm:
        name, sep, setting = item.partition(":")
        if not sep or "=" not in setting or name not in args.names:
            raise UsageError(f"--rm {item!r}: expected NAME:KEY=VALUE with NAME one of {', '.join(args.names)}")
    bench = host.benchmarks.get(args.benchmark)
    rms = []
    for name in args.names:
        cls = host.reward_models.get(name).cls
        settings = [item.split(":", 1)[1] for item in args.rm if item.split(":", 1)[0] == name]
        rms.append((name, ", ".join(settings), cls(parse_overrides(cls.Config, settings, what=f"--rm {name}"))))
    device = resolve_device(args.device)
    prepared = prepare(bench.cls(parse_overrides(bench.cls.Config, args.benchmark_set, what=f"--benchmark-set ({args.benchmark})")),
                       StageCache(args.cache_dir), device, quiet=args.quiet)  # fmt: skip
    rows = reward_model_rows(rms, prepared, device)
    print(reward_models_markdown(rows), end="")
    return 0


CORE_COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "runs": cmd_runs,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
    "samples": cmd_samples,
    "cache": cmd_cache,
    "sweep": cmd_sweep,
    "reward-models": cmd_reward_models,
    "data": cmd_data,
    "plot": cmd_plot,
    "fit": cmd_fit,
    "report": cmd_report,
}


def _plugin_command(argv: list[str]) -> int:
    """A command a plugin registered (``harness bench ppo``), or a group of them (``harness bench``)."""
    host = _host(argv)
    argv = _without_plugin_flags(argv)
    command, rest = host.commands.find(argv)
    if command is not None:
        return int(command.run(rest) or 0)
    group = host.commands.group(argv[0])
    if group and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print(f"harness {argv[0]} <name>: one of")
        for c in group:
            print(f"  harness {c.name:<14} {c.help}  [{c.plugin}]")
        return 0
    if group:
        names = [c.name.split()[1] for c in group]
        raise UsageError(f"unknown {argv[0]} {argv[1]!r}{did_you_mean(argv[1], names)}; valid: {', '.join(names)}")
    valid = list(CORE_COMMANDS) + sorted({n.split()[0] for n in host.commands.names()})
    raise UsageError(f"unknown command {argv[0]!r}{did_you_mean(argv[0], valid)}; valid: {', '.join(valid)}")


def _quiet_libraries() -> None:
    import warnings

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched from a hub at run time
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        try:
            print(__doc__.strip(), flush=True)
        except BrokenPipeError:  # `harness --help | head -2`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        return 0
    command = argv[0]
    _quiet_libraries()
    from harness.registry import RegistrationError

    previous, format_warning = _stop_on_sigterm(), warnings.formatwarning
    if not debug:
        warnings.formatwarning = _one_line_warning
    try:
        if command in CORE_COMMANDS:
            return CORE_COMMANDS[command](argv[1:])
        return _plugin_command(argv)
    except (UsageError, RegistrationError) as exc:
        if debug:
            raise
        print(f"{PROG} {command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except FaultError as exc:
        if debug:
            raise
        print(f"{PROG} {command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{PROG} {command}: {why}; the store is consistent (a run in progress is marked interrupted)", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except SystemExit as exc:  # argparse --help
        return int(exc.code or 0)
    except BrokenPipeError:  # the reader went away (`harness show RUN | head -1`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit-time flush is quiet too
        return 141
    except OSError as exc:  # the environment: a read-only folder, a full disk, a file where a folder should be
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG} {command}: error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug (ours or a plugin's): one line, the traceback on request
        if debug:
            raise
        print(f"{PROG} {command}: error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug, or {DEBUG_ENV}=1, "
              "for the traceback)", file=sys.stderr)  # fmt: skip
        return 1
    finally:
        warnings.formatwarning = format_warning
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (a multi-line message is joined, not cut)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _stop_on_sigterm():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt): the run in progress is stored as
    interrupted, as with Ctrl-C. Returns the handler it replaced (``None`` off the main thread,
    where handlers cannot be set)."""

    def terminate(signum, frame):
        raise Terminated("interrupted by SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main())
