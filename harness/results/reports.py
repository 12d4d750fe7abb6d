"""``harness.results.reports``, deprecated since 0.2.0: harness.reports.markdown."""

from harness.deprecation import warn_moved_module

warn_moved_module("harness.results.reports", "harness.reports.markdown", since="0.2.0")

from harness.reports.markdown import reward_models_markdown, samples_markdown

__all__ = ["reward_models_markdown", "samples_markdown"]
