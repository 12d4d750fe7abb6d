"""The ``harness`` command.

    harness list                                   algorithms, reward models, evaluators, benchmarks
    harness run --algo ppo [--no-kl] [--seeds 0 1 2] [--budget N] [--benchmark B] [--reward-model R]
    harness sweep sweeps/leaderboard.yaml          a grid of algorithms × benchmarks × seeds
    harness runs | show RUN | samples | leaderboard [--format md|csv|html|latex]
    harness reward-models pairwise ranking         held-out accuracy of reward models at equal annotation budgets
    harness cache ls | clear
    harness bench ppo
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.errors import UsageError, did_you_mean

PROG = "harness"
STORE_ENV = "HARNESS_STORE"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors, "did you mean" for unknown flags, and no abbreviations
    (a plugin's ``--reward`` must never be taken for ``--reward-model``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            flags = [a for a in self._option_string_actions if a.startswith("--")]
            unknown = message.split(":", 1)[1].split()
            hints = [did_you_mean(u.split("=")[0], flags) for u in unknown if u.startswith("-")]
            message = f"{message}{''.join(h for h in hints if h)}"
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {value}")
    return value


def _default_store() -> str:
    return os.environ.get(STORE_ENV, "results/store.sqlite")


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
    from harness.plugins import load_plugins

    host = load_plugins(_plugins_from_argv(argv))
    host.report_errors()
    return host


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="load a plugin file or module (repeatable; also $HARNESS_PLUGINS)")


def _store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=_default_store(), help="SQLite results store (default: %(default)s; $HARNESS_STORE)")


# -------------------------------------------------------------------------
# harness run
# -------------------------------------------------------------------------


def _run_base_parser(add_help: bool) -> ArgumentParser:
    parser = ArgumentParser(prog=f"{PROG} run", add_help=add_help, description="Train one algorithm on one benchmark, per seed; evaluate; store.")
    parser.add_argument("--algo", default="ppo", help="algorithm to run (harness list shows them; default: %(default)s)")
    parser.add_argument("--benchmark", default="sentiment", help="benchmark (default: %(default)s)")
    parser.add_argument("--reward-model", default="pairwise", help="proxy reward model to optimize (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=_seed, default=[0], metavar="SEED", help="one run per seed (default: 0)")
    parser.add_argument("--budget", type=_positive_int, default=None, help="training episodes (default: the benchmark's)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    parser.add_argument("--bench", action="append", default=[], metavar="KEY=VALUE", help="override a benchmark setting (repeatable)")
    _store_arg(parser)
    parser.add_argument("--results-dir", default="results", help="where run folders go (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="stage cache (default: $HARNESS_CACHE_DIR or ~/.cache/rlhf-harness)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(parser)
    return parser


def parse_run(argv: list[str], host=None):
    """``harness run`` arguments → (plugin host, RunRequest); every mistake is a UsageError.
    ``host``: plugins already loaded (a sweep loads them once)."""
    from harness.cache import StageCache
    from harness.config import add_dataclass_arguments, build_config, parse_overrides
    from harness.runner import RunRequest

    host = host or _host(argv)
    known, _ = _run_base_parser(add_help=False).parse_known_args([a for a in argv if a not in ("-h", "--help")])
    algo = host.algorithms.get(known.algo)
    rm = host.reward_models.get(known.reward_model)
    bench = host.benchmarks.get(known.benchmark)

    parser = _run_base_parser(add_help=True)
    add_dataclass_arguments(parser, algo.cls.Config, title=f"{known.algo} options")
    add_dataclass_arguments(parser, rm.cls.Config, prefix="rm_", title=f"reward model {known.reward_model!r} options")
    args = parser.parse_args(argv)
    request = RunRequest(
        algorithm=args.algo,
        benchmark=args.benchmark,
        reward_model=args.reward_model,
        algo_config=build_config(algo.cls.Config, args, what=f"--algo {args.algo}"),
        rm_config=build_config(rm.cls.Config, args, prefix="rm_", what=f"--reward-model {args.reward_model}"),
        bench_config=parse_overrides(bench.cls.Config, args.bench, what=f"--bench ({args.benchmark})"),
        seeds=args.seeds,
        budget=args.budget,
        device=args.device,
        store=Path(args.store),
        results_dir=Path(args.results_dir),
        cache=StageCache(args.cache_dir),
        quiet=args.quiet,
    )
    return host, request


def cmd_run(argv: list[str]) -> int:
    from harness.runner import run

    host, request = parse_run(argv)
    results = run(host, request)
    _print_results(results)
    return 0 if all(r.status == "finished" for r in results) else 1


def _print_results(results) -> None:
    for r in results:
        print(f"run {r.run_id}  {r.name}  {r.status}")
        if r.error:
            print(f"  error: {r.error}")
        for key in sorted(r.metrics):
            if key.startswith("eval/"):
                print(f"  {key:<18} {r.metrics[key]: .4f}")


# -------------------------------------------------------------------------
# the other commands
# -------------------------------------------------------------------------


def cmd_list(argv: list[str]) -> int:
    parser = ArgumentParser(prog=f"{PROG} list", description="Everything the loaded plugins registered.")
    _common(parser)
    parser.parse_args(argv)
    host = _host(argv)
    for title, registry in [("algorithms", host.algorithms), ("reward models", host.reward_models),
                            ("evaluators", host.evaluators), ("benchmarks", host.benchmarks)]:
        print(f"{title}:")
        width = max((len(e.name) for e in registry.entries()), default=0)
        for e in registry.entries():
            print(f"  {e.name:<{width}}  {e.description}  [{e.plugin}]")
    if host.errors:
        print("plugins that failed to load:")
        for err in host.errors:
            print(f"  {err.plugin}: {err.error}")
    return 0


def _existing_store(path: str) -> str:
    if not Path(path).exists():
        raise UsageError(f"no store at {path}; `harness run` creates one (or pass --store)")
    return path


def cmd_runs(argv: list[str]) -> int:
    from harness.store import Store

    parser = ArgumentParser(prog=f"{PROG} runs", description="List stored runs.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--algo")
    parser.add_argument("--status")
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        runs = store.list_runs(benchmark=args.benchmark, algorithm=args.algo, status=args.status)
        if not runs:
            print(f"no runs in {args.store}")
            return 0
        print(f"{'run':<12}  {'benchmark':<11} {'algorithm':<12} {'seed':>4}  {'status':<11} {'gold':>7}  {'kl':>7}  {'wall s':>7}")
        for r in runs:
            gold, kl = r.metrics.get("eval/gold", float("nan")), r.metrics.get("eval/kl", float("nan"))
            wall = r.wall_seconds if r.wall_seconds is not None else float("nan")
            print(f"{r.run_id:<12}  {r.benchmark:<11} {r.algorithm:<12} {r.seed:>4}  {r.status:<11} {gold:>7.3f}  {kl:>7.3f}  {wall:>7.1f}")
    return 0


def cmd_show(argv: list[str]) -> int:
    import json

    from harness.store import Store

    parser = ArgumentParser(prog=f"{PROG} show", description="Show one run: config, metrics, curve summary, samples.")
    parser.add_argument("run", help="run id or a unique prefix of it")
    parser.add_argument("--samples", type=int, default=5, help="samples to print (default: %(default)s)")
    _store_arg(parser)
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        r = store.get_run(args.run)
        print(f"run {r.run_id}  {r.name}\n  status: {r.status}" + (f"  error: {r.error}" if r.error else ""))
        print(f"  benchmark: {r.benchmark} v{r.benchmark_version}  algorithm: {r.algorithm}  reward model: {r.reward_model}"
              f"{' (oracle)' if r.rm_is_oracle else ''}  seed: {r.seed}")
        print(f"  config: {json.dumps(r.algo_config, sort_keys=True)}")
        print(f"  budget: {json.dumps(r.budget_used)}  wall: {r.wall_seconds}s  folder: {r.run_dir}")
        print(f"  git: {json.dumps(r.manifest.get('git'))}")
        if r.metrics:
            print("metrics:")
            for key in sorted(r.metrics):
                print(f"  {key:<24} {r.metrics[key]: .4f}")
        curves = store.curves(r.run_id)
        if len(curves):
            print(f"training curve: {len(curves)} steps; last step:")
            last = curves.iloc[-1]
            for key in curves.columns:
                if key != "step":
                    print(f"  {key:<28} {last[key]: .4f}")
        for s in store.samples(r.run_id, limit=args.samples):
            print(f"sample (gold {s['gold']:+.3f}, proxy {s['proxy']:+.3f}): {s['prompt']} ▸ {s['response']}")
    return 0


def cmd_samples(argv: list[str]) -> int:
    """Stored held-out generations, one section per finished run: what each policy writes."""
    from harness.store import Store

    parser = ArgumentParser(prog=f"{PROG} samples", description="Held-out samples of finished runs, as markdown.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--algo")
    parser.add_argument("--seed", type=int, default=None, help="only runs with this seed")
    parser.add_argument("-n", type=int, default=4, help="samples per run (default: %(default)s)")
    args = parser.parse_args(argv)
    with Store(_existing_store(args.store)) as store:
        for r in store.list_runs(benchmark=args.benchmark, algorithm=args.algo, status="finished"):
            if args.seed is not None and r.seed != args.seed:
                continue
            changed = {k: v for k, v in r.algo_config.items() if k in ("kl", "reward", "objective", "n", "k")}
            print(f"### {r.benchmark} · {r.algorithm} {changed or ''} · seed {r.seed} · run {r.run_id}\n")
            print(f"gold {r.metrics.get('eval/gold', float('nan')):+.3f}, proxy {r.metrics.get('eval/proxy', float('nan')):+.3f}, "
                  f"KL {r.metrics.get('eval/kl', float('nan')):.2f}\n")
            print("| gold | proxy | prompt ▸ response |\n| ---: | ---: | :--- |")
            for sample in store.samples(r.run_id, limit=args.n):
                text = f"{sample['prompt']} ▸ {sample['response']}".replace("|", "\\|")
                print(f"| {sample['gold']:+.2f} | {sample['proxy']:+.2f} | {text} |")
            print()
    return 0


def cmd_leaderboard(argv: list[str]) -> int:
    from harness.leaderboard import (
        FORMATS,
        build_leaderboard,
        render,
        write_leaderboard,
    )
    from harness.store import Store

    parser = ArgumentParser(prog=f"{PROG} leaderboard", description="Mean and 95% CI over seeds, per benchmark and config.")
    _store_arg(parser)
    parser.add_argument("--benchmark")
    parser.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default: %(default)s)")
    parser.add_argument("--out", default=None, help="also write LEADERBOARD.md and leaderboard.csv into this folder")
    args = parser.parse_args(argv)
    if args.format not in FORMATS:
        raise UsageError(f"--format {args.format!r} is not one of {', '.join(FORMATS)}{did_you_mean(args.format, FORMATS)}")
    with Store(_existing_store(args.store)) as store:
        frame = store.metrics_frame(benchmark=args.benchmark)
    table = build_leaderboard(frame)
    higher = frame.attrs.get("higher_is_better", {})
    print(render(table, args.format, higher_is_better=higher))
    if args.out:
        for path in write_leaderboard(table, Path(args.out), higher):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_cache(argv: list[str]) -> int:
    from harness.cache import StageCache

    parser = ArgumentParser(prog=f"{PROG} cache", description="The stage cache (pretrained models, SFT, RM data, RMs).")
    parser.add_argument("action", choices=["ls", "clear"])
    parser.add_argument("--stage", default=None, help="only this stage (data, base_lm, sft, judge, preferences, reward_model)")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    cache = StageCache(args.cache_dir)
    if args.action == "ls":
        entries = cache.entries()
        print(f"cache: {cache.root}")
        for e in entries:
            if args.stage in (None, e["stage"]):
                print(f"  {e['stage']:<13} {e['key']}  {e['bytes'] / 1e6:7.2f} MB  built in {e['seconds']}s")
        if not entries:
            print("  (empty)")
    else:
        print(f"removed {cache.clear(args.stage)} cached stage(s) from {cache.root}")
    return 0


def _finished_seeds(store_path: str, request, benchmark_version: str) -> set[int]:
    """Seeds of ``request`` already finished in the store (same benchmark version and config,
    algorithm config, reward model and config, and budget): a re-run sweep resumes instead of
    duplicating."""
    from harness.api import config_dict
    from harness.config import config_hash
    from harness.store import Store

    if not Path(store_path).exists():
        return set()
    with Store(store_path) as store:
        runs = store.list_runs(benchmark=request.benchmark, algorithm=request.algorithm, status="finished")
    algo_hash = config_hash(request.algorithm, config_dict(request.algo_config))
    bench_config = config_dict(request.bench_config)
    budget = request.budget or request.bench_config.default_budget
    return {
        r.seed for r in runs
        if r.config_hash == algo_hash and r.reward_model == request.reward_model
        and r.rm_config == config_dict(request.rm_config) and str(r.benchmark_version) == str(benchmark_version)
        and r.benchmark_config == bench_config and r.budget.get("episodes") == budget
    }  # fmt: skip


def cmd_sweep(argv: list[str]) -> int:
    import shlex
    import time

    from harness.leaderboard import build_leaderboard, render, write_leaderboard
    from harness.runner import run
    from harness.store import Store
    from harness.sweep import load_sweep

    parser = ArgumentParser(prog=f"{PROG} sweep", description="Run a grid (benchmarks × algorithm configs × seeds) from a YAML file.")
    parser.add_argument("file", type=Path)
    _store_arg(parser)
    parser.add_argument("--out", default="results", help="where LEADERBOARD.md and leaderboard.csv go (default: %(default)s)")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the runs, run nothing")
    parser.add_argument("--quiet", action="store_true")
    _common(parser)
    args = parser.parse_args(argv)
    sweep = load_sweep(args.file)
    shared = ["--store", args.store, "--results-dir", args.results_dir] + (["--cache-dir", args.cache_dir] if args.cache_dir else [])
    shared += (["--quiet"] if args.quiet else []) + [f"--plugin={p}" for p in args.plugin]
    # Check every cell before running any: a typo in the last cell must not waste the first ones.
    host = _host(shared)
    requests = [parse_run(cell.argv() + shared, host)[1] for cell in sweep.runs]
    failed = 0
    for i, (cell, request) in enumerate(zip(sweep.runs, requests), 1):
        done = _finished_seeds(args.store, request, host.benchmarks.get(request.benchmark).cls.version)
        todo = [seed for seed in cell.seeds if seed not in done]
        skipped = f"  (seeds {sorted(done & set(cell.seeds))} already in the store)" if len(todo) < len(cell.seeds) else ""
        print(f"[{i}/{len(sweep.runs)}] harness run {shlex.join(cell.argv())}{skipped}", flush=True)
        if not args.dry_run and todo:
            request.seeds = todo
            results = run(host, request)
            _print_results(results)
            failed += any(r.status != "finished" for r in results)
    if args.dry_run:
        return 0
    benchmarks = sorted({cell.benchmark for cell in sweep.runs})
    with Store(args.store) as store:
        frame = store.metrics_frame()
    frame = frame[frame["benchmark"].isin(benchmarks)] if len(frame) else frame
    table = build_leaderboard(frame)
    higher = frame.attrs.get("higher_is_better", {})
    with Store(args.store) as store:
        ids = set(frame["run_id"]) if len(frame) else set()
        gits = [r.manifest.get("git") or {} for r in store.list_runs(status="finished") if r.run_id in ids]
        commits = sorted({(g.get("commit") or "unknown") + (" (with uncommitted changes)" if g.get("dirty") else "") for g in gits})
    header = (
        f"Made by `harness sweep {args.file}` (store `{args.store}`), {time.strftime('%Y-%m-%d')}; "
        f"runs made at commit {', '.join(commits) or 'unknown'}.\n\n"
    )
    print(header + render(table, "md", higher_is_better=higher))
    for path in write_leaderboard(table, Path(args.out), higher, preamble=header):
        print(f"wrote {path}", file=sys.stderr)
    return 1 if failed else 0


def cmd_reward_models(argv: list[str]) -> int:
    """Held-out quality of reward models fitted on one benchmark's annotations (cached fits)."""
    import pandas as pd

    from harness.cache import StageCache
    from harness.config import parse_overrides
    from harness.pipeline import prepare
    from harness.reward import annotation_cost
    from harness.runner import fit_reward_model, resolve_device

    parser = ArgumentParser(prog=f"{PROG} reward-models", description="Compare reward models at their annotation budgets.")
    parser.add_argument("names", nargs="*", default=["pairwise", "ranking"], help="reward models (default: pairwise ranking)")
    parser.add_argument("--benchmark", default="sentiment")
    parser.add_argument("--bench", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rm", action="append", default=[], metavar="NAME:KEY=VALUE", help="a reward model's setting, e.g. ranking:k=6")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--format", default="md", choices=["md", "csv"])
    parser.add_argument("--quiet", action="store_true")
    _common(parser)
    args = parser.parse_args(argv)
    host = _host(argv)
    for item in args.rm:
        name, sep, setting = item.partition(":")
        if not sep or "=" not in setting or name not in args.names:
            raise UsageError(f"--rm {item!r}: expected NAME:KEY=VALUE with NAME one of {', '.join(args.names)}")
    for name in args.names:
        host.reward_models.get(name)
    bench = host.benchmarks.get(args.benchmark)
    artifacts = prepare(bench.cls(parse_overrides(bench.cls.Config, args.bench, what=f"--bench ({args.benchmark})")),
                        StageCache(args.cache_dir), resolve_device(args.device), quiet=args.quiet)
    rows = []
    for name in args.names:
        entry = host.reward_models.get(name)
        settings = [item.split(":", 1)[1] for item in args.rm if item.split(":", 1)[0] == name]
        config = parse_overrides(entry.cls.Config, settings, what=f"--rm {name}")
        fitted = fit_reward_model(host, name, config, artifacts, resolve_device(args.device))
        row = {"reward_model": name + (" (oracle)" if fitted.is_oracle else ""), "config": ", ".join(settings)}
        if entry.cls.preference_kind is not None:
            k = 2 if entry.cls.preference_kind == "pairs" else getattr(config, "k", 0) or artifacts.config.ranking_k
            row.update({"k": k, "annotation cost (pairs)": fitted.metrics.get("rm/train_items", float("nan")) * annotation_cost(k)})
        rows.append({**row, **fitted.metrics})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3f") if args.format == "md" else table.to_csv(index=False))
    return 0


def cmd_bench(argv: list[str]) -> int:
    from harness import bench

    return bench.main(argv)


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "runs": cmd_runs,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
    "samples": cmd_samples,
    "cache": cmd_cache,
    "sweep": cmd_sweep,
    "reward-models": cmd_reward_models,
    "bench": cmd_bench,
}


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"{PROG}: error: unknown command {command!r}{did_you_mean(command, COMMANDS)}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _quiet_libraries()
    from harness.registry import RegistrationError

    try:
        return COMMANDS[command](rest)
    except (UsageError, RegistrationError) as exc:
        print(f"{PROG} {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {command}: interrupted; the store is consistent (a run in progress is marked interrupted)", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse --help
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())
