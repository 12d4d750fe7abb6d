"""``harness.results.plots``, deprecated since 0.2.0: harness.reports.plots."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.plots", "harness.reports.plots", since="0.2.0")

from harness.reports.plots import *
from harness.reports.plots import __all__ as plots_all

__all__ = [*plots_all]  # noqa: PLE0604
