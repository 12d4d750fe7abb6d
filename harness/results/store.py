"""``harness.results.store``, deprecated since 0.2.0: harness.store."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.store", "harness.store", since="0.2.0")

from harness.specs import RunSpec
from harness.store import *
from harness.store import __all__ as store_all

__all__ = [*store_all, "RunSpec"]  # noqa: PLE0604
