"""``harness.results.trajectories``, deprecated since 0.2.0: harness.analysis.trajectories."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.trajectories", "harness.analysis.trajectories", since="0.2.0")

from harness.analysis.labels import row_labels
from harness.analysis.leaderboard import build_leaderboard
from harness.analysis.trajectories import COLUMNS, latest_runs, trajectory_frame
from harness.store import Store

__all__ = ["COLUMNS", "Store", "build_leaderboard", "latest_runs", "row_labels", "trajectory_frame"]
