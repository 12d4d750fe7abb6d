"""The built-in benchmarks, registered like any third-party plugin."""

from harness import hookimpl


@hookimpl
def harness_register_benchmarks(registry):
    from harness_benchmarks.arithmetic import Arithmetic
    from harness_benchmarks.review_rules import ReviewRules
    from harness_benchmarks.instructions import Instructions
    from harness_benchmarks.sentiment import Sentiment

    registry.add(Sentiment)
    registry.add(Arithmetic)
    registry.add(ReviewRules)
    registry.add(Instructions)
