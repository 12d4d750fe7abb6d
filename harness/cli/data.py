"""``harness data``: look at a dataset through an adapter before training on it.

    harness data show --format F [--split S] [--lang L|all] [--keep-synthetic] [-n N] [--kind K] PATH_OR_ID
    harness data formats

Wiring: ``add_data_command(subparsers)`` adds ``data`` to an argparse sub-command set and
``cmd_data(args)`` runs it; ``data_command(argv)`` does both: the core command ``harness data``.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (``harness.data``
lazily, inside the functions: it costs start-up time), ``harness.errors`` and ``harness.cli.flags``.
(It was ``harness.data.cli``, which imported ``harness.cli`` back: a circle.)
"""

from __future__ import annotations

import argparse

from harness.cli.flags import PROG, ArgumentParser


def _count(text: str) -> int:
    """A non-negative ASCII integer (``int`` also takes "３")."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def add_data_command(subparsers) -> argparse.ArgumentParser:
    """Add ``data`` (with ``show`` and ``formats``) to ``subparsers``; returns the ``data`` parser."""
    from harness.data.formats import FORMATS
    from harness.data.types import KINDS

    data = subparsers.add_parser("data", help="look at a dataset through a format adapter", description=__doc__.split("\n\n")[0])
    actions = data.add_subparsers(dest="data_action", required=True, metavar="{show,formats}")
    show = actions.add_parser("show", help="counts, skip reasons and rendered examples of a dataset",
                              description="Read a local json/jsonl/parquet/csv file or a Hub id as FORMAT; print what it yields.")  # fmt: skip
    show.add_argument("source", metavar="PATH_OR_ID", help="a local file or folder, or a Hugging Face Hub dataset id")
    show.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)}")  # checked by get_format: "did you mean"
    show.add_argument("--split", default="train", help="split or slice, e.g. train[:100] (default: %(default)s)")
    show.add_argument("--lang", default="en", help="OASST: keep this language only, or 'all' (default: %(default)s)")
    show.add_argument("--keep-synthetic", action="store_true", help="OASST: keep messages written by models")
    show.add_argument("-n", type=_count, default=3, help="examples to show per kind (default: %(default)s)")
    show.add_argument("--kind", action="append", choices=KINDS, default=None,
                      help="what to show: sft, pairs, rankings, prompts (repeatable; default: the format's kinds but prompts)")  # fmt: skip
    actions.add_parser("formats", help="the formats and what each yields")
    data.set_defaults(func=cmd_data)
    return data


def cmd_data(args: argparse.Namespace) -> int:
    """Run ``harness data show|formats`` from parsed ``args``."""
    from harness.data.describe import describe
    from harness.data.formats import FORMATS

    if args.data_action == "formats":
        for fmt in FORMATS.values():
            print(f"{fmt.name:<16} {', '.join(fmt.kinds):<24} {fmt.description}")
        return 0
    print(describe(args.format, args.source, kinds=args.kind, n=args.n, split=args.split,
                   lang=None if args.lang == "all" else args.lang, drop_synthetic=not args.keep_synthetic))  # fmt: skip
    return 0


def data_command(argv: list[str]) -> int:
    """``harness data ARGV`` with the main CLI's parser class (one-line errors, no abbreviations)."""
    parser = ArgumentParser(prog=PROG)
    add_data_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *argv])
    return args.func(args)
