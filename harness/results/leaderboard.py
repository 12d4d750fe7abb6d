"""``harness.results.leaderboard``, deprecated since 0.2.0: harness.analysis.leaderboard (the frame) and harness.reports.leaderboard (rendering). Labels are in harness.analysis.labels, columns in harness.analysis.columns, intervals in harness.analysis.intervals, write_atomically in harness.reports.files."""

from harness.deprecation import warn_moved_module

warn_moved_module(
    "harness.results.leaderboard",
    "harness.analysis.leaderboard (the frame) and harness.reports.leaderboard (rendering)",
    since="0.2.0",
)

from harness.analysis import significance as sig
from harness.analysis.columns import *
from harness.analysis.columns import __all__ as columns_all
from harness.analysis.intervals import confidence_interval
from harness.analysis.labels import config_labels, differences, row_labels, settings_labels
from harness.analysis.leaderboard import build_leaderboard
from harness.reports.files import write_atomically
from harness.reports.leaderboard import EMPTY_MESSAGE, FORMATS, MARKS, render, write_leaderboard
from harness.reports.text import latex_escape, md_cell
from harness.store import RUN_FRAME_COLUMNS

__all__ = [  # noqa: PLE0604
    *columns_all,
    "sig",
    "confidence_interval",
    "config_labels",
    "differences",
    "row_labels",
    "settings_labels",
    "build_leaderboard",
    "write_atomically",
    "EMPTY_MESSAGE",
    "FORMATS",
    "MARKS",
    "render",
    "write_leaderboard",
    "latex_escape",
    "md_cell",
    "RUN_FRAME_COLUMNS",
]
