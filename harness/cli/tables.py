"""The commands that turn the store into tables and figures: ``harness leaderboard`` (mean and CI
over seeds), ``harness plot`` (PNG and SVG), ``harness fit`` (Gao et al.'s over-optimisation forms)
and ``harness report`` (one standalone HTML page of them all).

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside the
functions: the results modules pull in pandas and matplotlib), ``harness.config``, ``harness.errors``
and ``harness.cli.flags``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli.flags import PROG, ArgumentParser, benchmark_arg, open_store, store_arg, store_parser, writable_folder
from harness.config import positive_int
from harness.errors import UsageError


def cmd_leaderboard(argv: list[str]) -> int:
    from harness.analysis.leaderboard import build_leaderboard
    from harness.reports.leaderboard import FORMATS, render, write_leaderboard

    parser = store_parser("leaderboard", "Mean and 95%% CI over seeds, one row per experiment.", benchmark=None)
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
    with open_store(args, check_benchmark=True) as store:
        frame = store.metrics_frame(benchmark=args.benchmark)
        # the paired bootstrap reads the runs' stored samples: built while the store is open
        table = build_leaderboard(frame, code_versions=args.code_versions, baseline=args.baseline, samples=store.samples)
        text = render(table, args.format)  # checks --format
        if frame.empty:  # as report, plot and fit: nothing to show is the command's mistake, exit 2
            raise UsageError(f"no finished runs in {store.path}: no leaderboard to make")
        written = write_leaderboard(table, Path(args.out)) if args.out else []
        if args.out and args.format == "html":  # the page: tables, plots, fits and samples, standalone
            from harness.reports.html_report import write_report

            written.append(write_report(store, Path(args.out) / "report.html", benchmark=args.benchmark))
    print(text, end="")
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_plot(argv: list[str]) -> int:
    """Figures from the store as PNG and SVG: the gold-vs-KL frontier, proxy vs gold over KL, training curves."""
    from harness.reports.plots import KINDS, plot_store

    parser = store_parser("plot", "Figures from the store, as PNG and SVG: frontier_<benchmark> "
                           "(gold reward vs √KL per run and configuration, best-of-n, π_sft), overoptimisation_<benchmark> "
                           "(proxy and gold gains vs √KL, a panel per configuration), curves_<benchmark>_<metric> (a logged "
                           "training metric, mean ± 95% CI over seeds).")  # fmt: skip
    parser.add_argument("--out", default="results/plots", help="folder for the files (default: %(default)s)")
    parser.add_argument("--kind", default="all", help=f"one of {', '.join(KINDS)} (default: %(default)s)")
    parser.add_argument("--metric", nargs="+", action="extend", default=None, metavar="KEY",
                        help="training curves of these logged keys, e.g. objective/kl loss/policy (default: objective/scores "
                             "and objective/kl, where logged)")  # fmt: skip
    args = parser.parse_args(argv)
    writable_folder(args.out, "--out")
    with open_store(args) as store:
        paths, notes = plot_store(store, Path(args.out), kind=args.kind, metrics=args.metric, benchmark=args.benchmark)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for path in paths:
        print(path)
    return 0


def cmd_fit(argv: list[str]) -> int:
    """Gao et al.'s over-optimisation forms fitted to the stored trajectories, as a table."""
    from harness.analysis.fits import fit_table
    from harness.analysis.trajectories import fit_points, load_trajectories
    from harness.reports.fit_table import FIT_FORMATS, render_fit_table

    parser = store_parser("fit", "Fit Gao, Schulman & Hilton (2022)'s forms to every configuration's "
                           "gold-vs-KL trajectory: R(d) = d(α − β log d) along RL training, R(d) = d(α − β d) for best-of-n, "
                           "d = √KL(π‖π_sft), R the gold gained over π_sft; α, β, R², the d and KL where gold peaks, with "
                           "bootstrap CIs over seeds. A configuration with too few points is refused, saying why.")  # fmt: skip
    parser.add_argument("--format", default="md", choices=FIT_FORMATS)
    parser.add_argument("--bootstrap", type=positive_int, default=1000, metavar="B", help="bootstrap refits (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the table here instead of printing it")
    args = parser.parse_args(argv)
    if args.out is not None:
        writable_folder(args.out.parent, "--out")
    with open_store(args, check_benchmark=True) as store:
        points = fit_points(load_trajectories(store, args.benchmark))
    if points.empty:
        raise UsageError("no trajectories to fit: no run in the store recorded checkpoints (--eval-checkpoint-every) or a best-of-n curve")
    text = render_fit_table(fit_table(points, n_boot=args.bootstrap, seed=0), args.format)
    if args.out is None:
        print(text)
    else:
        from harness.reports.files import write_atomically

        print(write_atomically(args.out, text))
    return 0


def cmd_report(argv: list[str]) -> int:
    """One standalone HTML page: leaderboards, inline SVG plots, fits, samples, the sweep and manifests."""
    from harness.reports.html_report import SAMPLES_PER_RUN, write_report

    parser = ArgumentParser(prog=f"{PROG} report", description="One standalone HTML page (nothing loaded from a network): "
                            "the leaderboards, the plots inline, the over-optimisation fits, a few samples per run, the "
                            "sweep's command and file, and the runs' manifests.")  # fmt: skip
    store_arg(parser)
    parser.add_argument("--out", default="results/report.html", help="the page to write (default: %(default)s)")
    benchmark_arg(parser)
    parser.add_argument("--sweep", type=Path, default=None, metavar="FILE", help="show this sweep file and its command")
    parser.add_argument("--samples", type=positive_int, default=SAMPLES_PER_RUN, metavar="N",
                        help="stored samples shown per run (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if not Path(args.out).name:
        raise UsageError(f"--out {args.out!r}: expected a file name, e.g. results/report.html")
    writable_folder(Path(args.out).parent, "--out")
    with open_store(args) as store:
        path = write_report(store, Path(args.out), benchmark=args.benchmark, sweep_file=args.sweep, samples_per_run=args.samples)
    print(path)
    return 0
