"""The columns of a leaderboard frame (:func:`harness.analysis.leaderboard.build_leaderboard`):
key columns, each metric's mean and interval, and with a baseline the comparison columns; the
order metrics come in and the bounds some metrics cannot leave. Layer: harness.analysis (imports
nothing of the harness).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BASELINE_COLUMNS", "CODE_MODES", "HI", "KEY_COLUMNS", "LO", "METRIC_BOUNDS", "METRIC_ORDER", "NA", "NUMERIC_COLUMNS",
    "PAIRED", "PAIRED_DIFF", "PAIRED_HI", "PAIRED_LO", "PAIRED_P", "SAMPLE_KEYS", "TEST_SUFFIXES", "WELCH", "WELCH_P",
    "metric_columns", "order_metrics",
]  # fmt: skip

CODE_MODES = ("latest", "pool", "each")
#: Metrics come in this order when present; any others follow alphabetically.
METRIC_ORDER = (
    "eval/gold",
    "eval/win_rate",
    "eval/proxy",
    "eval/kl",
    "eval/distinct_1",
    "eval/distinct_2",
    "eval/length",
)
KEY_COLUMNS = ["benchmark", "version", "settings", "algorithm", "config", "reward_model", "seeds", "episodes",
               "rm_queries", "annotations", "samples_per_response", "wall_s", "code", "key"]  # fmt: skip
NUMERIC_COLUMNS = ("seeds", "episodes", "rm_queries", "annotations", "samples_per_response", "wall_s")
LO, HI = " lo", " hi"  # the interval's ends: "<metric> lo", "<metric> hi"
#: how a missing value is shown
NA = "–"
#: metrics whose values cannot leave these bounds (None: unbounded on that side); their intervals
#: respect them (:func:`harness.analysis.intervals.interval`)
METRIC_BOUNDS: dict[str, tuple[float, float | None]] = {
    "eval/eos_rate": (0.0, 1.0),
    "eval/win_rate": (0.0, 1.0),
    "eval/distinct_1": (0.0, 1.0),
    "eval/distinct_2": (0.0, 1.0),
    "eval/kl": (0.0, None),
    "eval/length": (0.0, None),
}
#: the key of a stored sample (``Store.samples``) that a metric is the mean of: the paired
#: bootstrap's per-prompt values. Other metrics (win rate, distinct-n) have no per-sample value.
SAMPLE_KEYS = {"eval/gold": "gold", "eval/proxy": "proxy", "eval/kl": "kl", "eval/length": "length", "eval/eos_rate": "ended"}

# With a baseline: per-row columns after KEY_COLUMNS (the section's figures, repeated on its rows)
BASELINE_COLUMNS = ["label", "baseline", "welch tests", "paired tests", "paired prompts", "paired draws", "note"]
# ... and per metric, after its mean and interval: the verdicts (significance.BETTER, …) and figures
WELCH, WELCH_P = " welch", " welch p"  # verdict; Holm-adjusted p
PAIRED, PAIRED_DIFF, PAIRED_LO, PAIRED_HI, PAIRED_P = " paired", " paired diff", " paired lo", " paired hi", " paired p"
TEST_SUFFIXES = (WELCH, WELCH_P, PAIRED, PAIRED_DIFF, PAIRED_LO, PAIRED_HI, PAIRED_P)


def metric_columns(metrics: Iterable[str], baseline: bool = False) -> list[str]:
    """The board's columns for ``metrics``: each one's mean, ``lo``, ``hi`` and, with a baseline,
    the test columns (:data:`TEST_SUFFIXES`)."""
    suffixes = ("", LO, HI) + (TEST_SUFFIXES if baseline else ())
    return [m + suffix for m in metrics for suffix in suffixes]


def order_metrics(keys: Iterable[str]) -> list[str]:
    """``keys`` in :data:`METRIC_ORDER`, then the rest alphabetically."""
    keys = set(keys)
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))
