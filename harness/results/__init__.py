"""Deprecated (since 0.2.0): ``harness.results`` was split by job into :mod:`harness.store` (the
store), :mod:`harness.analysis` (intervals, significance, the leaderboard frame, fits,
trajectories) and :mod:`harness.reports` (tables, plots, the HTML page, markdown reports). Its
modules stay as aliases that warn on import. Layer: the top (beside harness.cli): nothing imports it.
"""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results", "harness.store, harness.analysis and harness.reports", since="0.2.0")
