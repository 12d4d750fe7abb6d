"""``harness reward-models [NAME ...]``: held-out quality of reward models fitted on one benchmark's
annotations, at their annotation budgets (the fits are cached).

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
the functions: the pipeline and ``harness.running`` pull in torch), ``harness.config``,
``harness.errors``, and ``harness.cli.flags`` and ``harness.cli.host``.
"""

from __future__ import annotations

from harness.cli.flags import PROG, ArgumentParser, plugin_arg
from harness.cli.host import plugin_host
from harness.errors import UsageError


def cmd_reward_models(argv: list[str]) -> int:
    """Held-out quality of reward models fitted on one benchmark's annotations (cached fits)."""
    from harness.config import parse_overrides
    from harness.pipeline.cache import StageCache
    from harness.pipeline.stages import prepare
    from harness.reports.markdown import reward_models_markdown
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
    plugin_arg(parser)
    args = parser.parse_args(argv)
    host = plugin_host(argv)
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
