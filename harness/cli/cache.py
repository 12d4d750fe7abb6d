"""``harness cache ls|clear``: the stage cache (pretrained models, SFT, RM data, RMs): what it holds,
and emptying it. A light command: it loads no plugin.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
the functions), ``harness.config``, ``harness.errors`` and ``harness.cli.flags``.
"""

from __future__ import annotations

from harness.cli.flags import PROG, ArgumentParser
from harness.errors import UsageError


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
