"""win rate: how often the policy's response beats the reference policy's for the same prompt."""

import datasets
import evaluate

_KWARGS = """
Args:
    predictions: gold scores of the policy's responses.
    references: gold scores of the reference policy's responses, paired by position (same prompt).
Returns:
    win_rate: share of pairs the policy wins, a tie counting half.
Example:
    >>> WinRate().compute(predictions=[1.0, 0.0, 0.5], references=[0.0, 1.0, 0.5])
    {'win_rate': 0.5}
"""


class WinRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Pairwise win rate against a reference, judged by a score; ties count half.",
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references):
        if not predictions:
            return {"win_rate": float("nan")}
        wins = sum(1.0 if p > r else 0.5 if p == r else 0.0 for p, r in zip(predictions, references))
        return {"win_rate": wins / len(predictions)}
