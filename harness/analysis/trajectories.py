"""Gold, proxy and KL along training, read back from the store as one tidy frame: what the
frontier and over-optimisation plots draw and Gao et al.'s forms are fitted to.

Each finished run contributes its checkpoint points (``checkpoint/*`` curves: π_sft at episodes
0, then every ``--eval-checkpoint-every`` episodes, then the final policy) or, for a best-of-n
run, its best-of-k curve (``best_of_n/*``: k = 1, 2, 4, … from one set of samples). Runs are
labelled as their leaderboard rows are, and only the rows the leaderboard shows are read (the
newest code version of each experiment), so a plot never pools different experiments.

Also the frames the figures and fits read beside it: the runs a leaderboard shows with their row
labels (:func:`run_info`), their training curves, long (:func:`curve_frame`), a trajectory frame
checked and normalised (:func:`prepare_frame`) and the points Gao et al.'s forms are fitted to
(:func:`fit_points`).

Layer: harness.analysis (imports its own modules, harness.store and the ground floor).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from harness.analysis.labels import row_labels
from harness.analysis.leaderboard import build_leaderboard
from harness.errors import UsageError
from harness.store.core import Store

#: the columns of a trajectory frame (:func:`trajectory_frame`)
TRAJECTORY_COLUMNS = (
    "run_id",
    "benchmark",
    "settings",
    "config",
    "algorithm",
    "seed",
    "kind",
    "episodes",
    "n",
    "kl",
    "d",
    "gold",
    "proxy",
)
#: curve keys that are not training metrics: the checkpoint evaluations the frontier draws
NOT_TRAINING_PREFIXES = ("checkpoint/", "best_of_n/", "bon/")

COLUMNS = list(TRAJECTORY_COLUMNS)
CURVE_COLUMNS = ["run_id", "benchmark", "settings", "config", "seed", "step", "key", "value"]


def latest_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a ``--code-versions latest`` leaderboard shows: each experiment's newest code
    version, one run per (spec, seed)."""
    runs = runs.drop_duplicates(subset=["spec_key", "seed"], keep="last")
    newest = runs.groupby("experiment_key", sort=False)["code_version"].transform("last")
    return runs[runs["code_version"] == newest]


def _row_names(runs: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """For the leaderboard of ``runs``: each experiment key's row label and its section's settings."""
    board = build_leaderboard(runs)
    return dict(zip(board["key"], row_labels(board.to_dict("records")))), dict(zip(board["key"], board["settings"]))


def trajectory_frame(store: Store, benchmark: str | None = None) -> pd.DataFrame:
    """One row per measured point (:data:`COLUMNS`): ``kind`` is ``rl`` (a checkpoint along
    training; ``episodes`` spent) or ``best-of-n`` (``n``); ``kl`` is KL(π‖π_sft) per sequence in
    nats, ``d`` = √max(kl, 0); ``gold`` NaN where the benchmark has no gold reward."""
    runs = latest_runs(store.metrics_frame(benchmark=benchmark))
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    labels, settings = _row_names(runs)
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


def load_trajectories(store, benchmark: str | None = None) -> pd.DataFrame:
    """The store's trajectory frame (:data:`TRAJECTORY_COLUMNS`), empty when it has none."""
    return trajectory_frame(store, benchmark)


def prepare_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A trajectory frame checked and normalised: ``config`` and ``settings`` (the leaderboard
    section within the benchmark; "" when absent) as text, ``seed`` as int, ``d`` recomputed as
    √max(kl, 0). :raises UsageError: a column is missing."""
    missing = [
        c for c in ("benchmark", "config", "seed", "kind", "episodes", "n", "kl", "gold", "proxy") if c not in frame.columns
    ]
    if missing:
        raise UsageError(f"trajectory frame lacks column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    out = frame.copy()
    out["settings"] = out["settings"].fillna("").astype(str) if "settings" in out.columns else ""
    out["config"] = out["config"].astype(str)
    out["benchmark"] = out["benchmark"].astype(str)
    out["seed"] = out["seed"].astype("int64")
    for col in ("episodes", "n", "kl", "gold", "proxy"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["d"] = np.sqrt(np.clip(out["kl"].to_numpy(), 0.0, None))
    return out


def fit_points(trajectories: pd.DataFrame) -> pd.DataFrame:
    """The points Gao et al.'s forms are fitted to (:func:`harness.analysis.fits.fit_table`): one
    configuration per leaderboard row (a benchmark's sections are never pooled: the section's
    settings join the label), and configurations that never left π_sft (``sft``: a point, not
    a curve) left out."""
    frame = prepare_frame(trajectories)
    frame["config"] = [f"{c} · {s}" if s else c for c, s in zip(frame["config"], frame["settings"])]
    return frame.groupby(["benchmark", "config"], group_keys=False).filter(lambda part: not stays_at_sft(part))


def stays_at_sft(part: pd.DataFrame) -> bool:
    """Whether the trajectory points ``part`` (one configuration's) never left π_sft (``sft``):
    every point at KL 0 (exactly 0 for π = π_sft). Such a configuration is π_sft's point, not a
    curve."""
    if (part["kind"] == "best-of-n").any():
        return False
    return bool((part["kl"].fillna(0).abs() < 1e-9).all())


def run_info(store, benchmark: str | None = None) -> dict[str, tuple[str, str]]:
    """The runs a leaderboard shows (finished; each experiment's newest code version, one per
    seed), each with its row's label and section, as the trajectory frame labels them:
    ``run_id → (config, settings)``."""
    runs = latest_runs(store.metrics_frame(benchmark=benchmark))
    if runs.empty:
        return {}
    labels, sections = _row_names(runs)
    return {r.run_id: (labels.get(r.experiment_key, r.algorithm), sections.get(r.experiment_key, "")) for r in runs.itertuples()}


def curve_frame(store, benchmark: str | None = None, info: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """The training curves of the runs :func:`run_info` names, long (:data:`CURVE_COLUMNS`),
    checkpoint evaluations left out."""
    info = run_info(store, benchmark) if info is None else info
    parts = []
    for r in store.list_runs(benchmark=benchmark, status="finished"):
        if r.run_id not in info:
            continue
        wide = store.curves(r.run_id)
        keys = [k for k in wide.columns if k != "step" and not k.startswith(NOT_TRAINING_PREFIXES)]
        if not keys:
            continue
        long = wide.melt(id_vars="step", value_vars=keys, var_name="key", value_name="value").dropna(subset=["value"])
        config, settings = info[r.run_id]
        parts.append(long.assign(run_id=r.run_id, benchmark=r.benchmark, settings=settings, config=config, seed=r.seed))
    if not parts:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[CURVE_COLUMNS]
