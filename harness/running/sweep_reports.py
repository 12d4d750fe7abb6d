"""A sweep's written reports: LEADERBOARD.md and leaderboard.csv from its own runs, and the
``reports`` its file asks for (SAMPLES.md, REWARD_MODELS.md, plots, fits, report.html).

Layer: running. Imports the results modules (store, analysis, reports: lazily, by their old
paths until they settle), the specs and the :mod:`harness.running` modules below it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.running.sweep_file import Sweep, reward_model_entries
from harness.running.workspace import Workspace
from harness.specs import as_plan


def write_sweep_reports(sweep: Sweep, workspace: Workspace, out_dir: Path, command: str) -> list[Path]:
    """The sweep's tables, from its own runs only (its spec keys: this code version, these
    settings): LEADERBOARD.md and leaderboard.csv, and the ``reports`` the file asks for."""
    from harness.analysis.leaderboard import build_leaderboard
    from harness.reports.files import write_atomically
    from harness.reports.leaderboard import write_leaderboard
    from harness.reports.markdown import samples_markdown

    keys = {spec.key for spec in sweep.specs}
    frame = workspace.store.metrics_frame()
    frame = frame[frame["spec_key"].isin(keys)] if len(frame) else frame
    codes = sorted({spec.code_version for spec in sweep.specs})
    header = (f"Made by `{command}` (store `{workspace.store.path}`), {time.strftime('%Y-%m-%d')}; "
              f"code version {', '.join(codes)}.\n\n")  # fmt: skip
    board = build_leaderboard(frame)
    paths = write_leaderboard(board, out_dir, preamble=header)
    if (samples := sweep.reports.get("samples")) is not None:
        seed, n = int(samples.get("seed", 0)), int(samples.get("n", 4))
        runs = [r for r in workspace.store.list_runs(status="finished") if r.spec_key in keys and r.seed == seed]
        intro = f"# Samples: what each policy writes\n\n{header}Held-out prompts; the first {n} stored samples of each seed-{seed} run.\n\n"
        paths.append(write_atomically(out_dir / "SAMPLES.md", intro + samples_markdown(runs, workspace.store.samples, n)))
    if (entries := sweep.reports.get("reward_models")) is not None:
        paths.append(write_atomically(out_dir / "REWARD_MODELS.md", _reward_model_report(sweep, workspace, entries, header)))
    # Figures, fits and the page read the whole store: give a sweep a store of its own (as the committed one has).
    if sweep.reports.get("plots"):
        from harness.reports.plots import plot_store

        paths += plot_store(workspace.store, out_dir / "plots")[0]
    if sweep.reports.get("fits"):
        paths += _write_fits(workspace, out_dir, header)
    if sweep.reports.get("report"):
        from harness.reports.html_report import write_report

        paths.append(write_report(workspace.store, out_dir / "report.html", sweep_file=sweep.path))
    return paths


def _write_fits(workspace: Workspace, out_dir: Path, header: str) -> list[Path]:
    from harness.analysis.fits import fit_table
    from harness.analysis.trajectories import fit_points, load_trajectories
    from harness.reports.files import write_atomically
    from harness.reports.fit_table import render_fit_table

    points = fit_points(load_trajectories(workspace.store))
    if points.empty:
        return []
    table = fit_table(points, n_boot=1000, seed=0)
    intro = "# Over-optimisation fits (Gao, Schulman & Hilton 2022)\n\n" + header
    return [write_atomically(out_dir / "FITS.md", intro + render_fit_table(table, "md") + "\n"),
            write_atomically(out_dir / "fits.csv", render_fit_table(table, "csv"))]  # fmt: skip


def _reward_model_report(sweep: Sweep, workspace: Workspace, entries: list, header: str) -> str:
    from harness.reports.markdown import reward_models_markdown
    from harness.running.reward_fit import reward_model_rows

    out = [
        "# Reward models at an equal annotation budget\n",
        header.strip() + "\n",
        "A K-ranking costs log2(K!) pair-equivalents (the comparisons an optimal sort needs). Held-out items are "
        "drawn on eval prompts; `rm/accuracy` is agreement with the (noisy) annotator over pairs of different responses, "
        "`rm/gold_accuracy` agreement with r* over pairs whose gold differs, `rm/spearman` the rank correlation with r* "
        "over all held-out responses.\n",
    ]
    seen: set[str] = set()
    for item in (item for cell in sweep.cells for item in cell.runs()):
        plan = as_plan(workspace.host, item)
        spec = plan.spec
        bench_id = json.dumps(spec.benchmark.as_dict(), sort_keys=True)
        if bench_id in seen:
            continue
        seen.add(bench_id)
        benchmark, _, _ = plan.build()
        prepared = workspace.prepared(benchmark, spec)
        rows = reward_model_rows(reward_model_entries(workspace.host, entries), prepared, workspace.device)
        out.append(f"## {spec.benchmark.name}\n\n{reward_models_markdown(rows)}")
    return "\n".join(out)
