"""``harness.results.fits``, deprecated since 0.2.0: harness.analysis.fits (the fits) and harness.reports.fit_table (rendering)."""

from harness.deprecation import warn_moved_module

warn_moved_module(
    "harness.results.fits", "harness.analysis.fits (the fits) and harness.reports.fit_table (rendering)", since="0.2.0"
)

from harness.analysis.columns import NA
from harness.analysis.fits import (
    BASELINE,
    BASELINE_ONLY,
    CI_QUANTITIES,
    FITTERS,
    FORMS,
    MIN_POINTS,
    TABLE_COLUMNS,
    TRAJECTORY_COLUMNS,  # fmt: skip
    Fit,
    FitRefused,
    fit_best_of_n,
    fit_rl,
    fit_table,
)
from harness.reports.fit_table import FIT_FORMATS, render_fit_table
from harness.reports.text import md_cell

__all__ = [
    "BASELINE",
    "BASELINE_ONLY",
    "CI_QUANTITIES",
    "FITTERS",
    "FIT_FORMATS",
    "FORMS",
    "MIN_POINTS",
    "NA",
    "TABLE_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "Fit",
    "FitRefused",
    "fit_best_of_n",
    "fit_rl",
    "fit_table",
    "md_cell",
    "render_fit_table",
]
