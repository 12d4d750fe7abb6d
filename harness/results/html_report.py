"""``harness.results.html_report``, deprecated since 0.2.0: harness.reports.html_report."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.html_report", "harness.reports.html_report", since="0.2.0")

from harness.reports.html_report import *
from harness.reports.html_report import __all__ as html_report_all

__all__ = [*html_report_all]  # noqa: PLE0604
