"""``harness.results.significance``, deprecated since 0.2.0: harness.analysis.significance."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.significance", "harness.analysis.significance", since="0.2.0")

from harness.analysis.significance import *
from harness.analysis.significance import __all__ as significance_all

__all__ = [*significance_all]  # noqa: PLE0604
