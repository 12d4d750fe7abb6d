"""The commands that look at what is registered and stored: ``harness list`` (the loaded plugins'
algorithms, reward models, evaluators, benchmarks and commands), ``harness runs``, ``harness show RUN``
and ``harness samples``.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
the functions), ``harness.config``, ``harness.errors``, and ``harness.cli.flags`` and ``harness.cli.host``.
"""

from __future__ import annotations

import json
import math
import sys

from harness.cli.flags import PROG, ArgumentParser, open_store, plugin_arg, seed, store_arg, store_parser
from harness.cli.host import plugin_host
from harness.config import non_negative_int, positive_int


def metric_text(value: float | None, fmt: str = " .4f") -> str:
    """A metric as text; "–" (not measured) for NaN or ``None``, e.g. gold on a benchmark without r*."""
    return " –" if value is None or math.isnan(value) else format(value, fmt)


def cmd_list(argv: list[str]) -> int:
    parser = ArgumentParser(prog=f"{PROG} list", description="Everything the loaded plugins registered.")
    plugin_arg(parser)
    parser.parse_args(argv)
    host = plugin_host(argv)
    for title, entries in [("algorithms", host.algorithms.entries()), ("reward models", host.reward_models.entries()),
                           ("evaluators", host.evaluators.entries()), ("benchmarks", host.benchmarks.entries())]:  # fmt: skip
        print(f"{title}:")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            print(f"  {e.name:<{width}}  {e.description}  [{e.plugin}]")
    commands = [c for c in host.commands.entries() if not host.commands.is_core(c.name)]  # the plugins' own
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


def cmd_runs(argv: list[str]) -> int:
    from harness.store import STATUSES

    parser = store_parser("runs", "List stored runs.", benchmark=None)
    parser.add_argument("--algo")
    parser.add_argument("--status", help=f"one of {', '.join(STATUSES)}")
    parser.add_argument("--key", help="a prefix of a spec key or experiment key (the `key` column; leaderboard CSVs carry it)")
    parser.add_argument("--mark-interrupted", metavar="RUN", help="mark a `running` run whose process is gone (e.g. on a lost "
                        "host) as interrupted, so that its seed can run again")  # fmt: skip
    args = parser.parse_args(argv)
    with open_store(args) as store:
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
    from harness.store import LEGACY_PREFIX

    return key[: len(LEGACY_PREFIX) + 8] if key.startswith(LEGACY_PREFIX) else key[:8]


def cmd_show(argv: list[str]) -> int:
    from harness.running.runner import run_times

    parser = ArgumentParser(prog=f"{PROG} show", description="Show one run: spec, metrics, curve summary, samples.")
    parser.add_argument("run", help="run id or a unique prefix of it")
    parser.add_argument("--samples", type=non_negative_int, default=5, help="samples to print (default: %(default)s)")
    store_arg(parser)
    args = parser.parse_args(argv)
    with open_store(args) as store:
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
                print(f"  {key:<24} {metric_text(r.metrics[key])}")
        curves = store.curves(r.run_id)
        if len(curves):
            print(f"training curve: {len(curves)} steps; last step:")
            last = curves.iloc[-1]
            for key in curves.columns:
                if key != "step":
                    print(f"  {key:<28} {last[key]: .4f}")
        for s in store.samples(r.run_id, limit=args.samples):
            print(f"sample (gold {metric_text(s['gold'], '+.3f')}, proxy {metric_text(s['proxy'], '+.3f')}): {s['prompt']} ▸ {s['response']}")
    return 0


def cmd_samples(argv: list[str]) -> int:
    """Stored held-out generations, one section per finished run: what each policy writes."""
    from harness.reports.markdown import samples_markdown

    parser = store_parser("samples", "Held-out samples of finished runs, as markdown.", benchmark=None)
    parser.add_argument("--algo")
    parser.add_argument("--key", help="a prefix of a spec key or experiment key")
    parser.add_argument("--seed", type=seed, default=None, help="only runs with this seed")
    parser.add_argument("-n", type=positive_int, default=4, help="samples per run (default: %(default)s)")
    args = parser.parse_args(argv)
    with open_store(args, check_benchmark=True) as store:
        runs = store.list_runs(benchmark=args.benchmark, algorithm=args.algo, status="finished", key=args.key)
        runs = [r for r in runs if args.seed is None or r.seed == args.seed]
        print(samples_markdown(runs, store.samples, args.n), end="")
    return 0
