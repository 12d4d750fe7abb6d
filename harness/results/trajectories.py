"""Gold, proxy and KL along training, read back from the store as one tidy frame: what the
frontier and over-optimisation plots draw and Gao et al.'s forms are fitted to.

Each finished run contributes its checkpoint points (``checkpoint/*`` curves: π_sft at episodes
0, then every ``--eval-checkpoint-every`` episodes, then the final policy) or, for a best-of-n
run, its best-of-k curve (``best_of_n/*``: k = 1, 2, 4, … from one set of samples). Runs are
labelled as their leaderboard rows are, and only the rows the leaderboard shows are read (the
newest code version of each experiment), so a plot never pools different experiments.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.results.leaderboard import build_leaderboard, row_labels
from harness.results.store import Store

COLUMNS = ["run_id", "benchmark", "settings", "config", "algorithm", "seed", "kind", "episodes", "n", "kl", "d", "gold", "proxy"]


def latest_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a ``--code-versions latest`` leaderboard shows: each experiment's newest code
    version, one run per (spec, seed)."""
    runs = runs.drop_duplicates(subset=["spec_key", "seed"], keep="last")
    newest = runs.groupby("experiment_key", sort=False)["code_version"].transform("last")
    return runs[runs["code_version"] == newest]


def trajectory_frame(store: Store, benchmark: str | None = None) -> pd.DataFrame:
    """One row per measured point (:data:`COLUMNS`): ``kind`` is ``rl`` (a checkpoint along
    training; ``episodes`` spent) or ``best-of-n`` (``n``); ``kl`` is KL(π‖π_sft) per sequence in
    nats, ``d`` = √max(kl, 0); ``gold`` NaN where the benchmark has no gold reward."""
    runs = latest_runs(store.metrics_frame(benchmark=benchmark))
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    board = build_leaderboard(runs)
    labels = dict(zip(board["key"], row_labels(board.to_dict("records"))))
    settings = dict(zip(board["key"], board["settings"]))
    rows = []
    for run in runs.itertuples():
        curves = store.curves(run.run_id)
        base = {"run_id": run.run_id, "benchmark": run.benchmark, "settings": settings.get(run.experiment_key, ""),
                "config": labels.get(run.experiment_key, run.algorithm), "algorithm": run.algorithm, "seed": int(run.seed)}  # fmt: skip
        if "best_of_n/n" in curves:
            points = curves.dropna(subset=["best_of_n/n"])
            for p in points.to_dict("records"):
                rows.append({**base, "kind": "best-of-n", "episodes": math.nan, "n": p["best_of_n/n"],
                             "kl": p["best_of_n/kl"], "gold": p["best_of_n/gold"], "proxy": p["best_of_n/proxy"]})  # fmt: skip
        elif "checkpoint/episodes" in curves:
            points = curves.dropna(subset=["checkpoint/episodes"]).sort_values("step")
            for p in points.to_dict("records"):
                rows.append({**base, "kind": "rl", "episodes": p["checkpoint/episodes"], "n": math.nan,
                             "kl": p["checkpoint/kl"], "gold": p["checkpoint/gold"], "proxy": p["checkpoint/proxy"]})  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "d"])
    frame["d"] = frame["kl"].clip(lower=0).pow(0.5)
    return frame[COLUMNS]
