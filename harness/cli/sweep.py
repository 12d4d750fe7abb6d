"""``harness sweep FILE``: a grid (benchmarks × algorithm configs × seeds) from a YAML file, run here
one at a time or as Ray tasks, then its tables.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
the functions: ``harness.running`` pulls in torch), ``harness.config``, ``harness.errors``, and
``harness.cli.flags`` and ``harness.cli.host``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli.flags import PROG, ArgumentParser, open_workspace, plugins_from_argv, workspace_args, writable_folder
from harness.cli.host import plugin_host
from harness.config import non_negative_int
from harness.errors import UsageError


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
    workspace_args(parser)
    args = parser.parse_args(argv)
    if args.executor != "ray" and (args.address is not None or args.max_retries is not None):
        raise UsageError("--address and --max-retries go with --executor ray")
    host = plugin_host(argv)
    sweep = load_sweep(args.file, host)  # every cell is checked before any runs
    if not args.dry_run:
        writable_folder(args.out, "--out")  # the tables come last: found unwritable after an hour of runs is too late
    if args.device == "auto":
        args.device = sweep.device
    executor = None  # local
    if args.executor == "ray":
        from harness.running.executors import DEFAULT_MAX_RETRIES, RayExecutor

        executor = RayExecutor(address=args.address, plugins=tuple(plugins_from_argv(argv)), device=args.device,
                               max_retries=DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries)  # fmt: skip
    with open_workspace(host, args) as workspace:
        outcome = run_sweep(sweep, workspace, dry_run=args.dry_run, executor=executor)
        if args.dry_run:
            return 0
        for path in write_sweep_reports(sweep, workspace, Path(args.out), command=f"harness sweep {args.file}"):
            print(f"wrote {path}", file=sys.stderr)
    return 1 if outcome.failed else 0
