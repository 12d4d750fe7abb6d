"""mean score: the mean of per-sample values with its standard error."""

import math

import datasets
import evaluate

_KWARGS = """
Args:
    predictions: per-sample values (a reward, a KL, a length).
Returns:
    mean, stderr (NaN for fewer than two values).
Example:
    >>> MeanScore().compute(predictions=[1.0, 2.0, 3.0, 6.0])
    {'mean': 3.0, 'stderr': 1.0801234497346435}
"""


class MeanScore(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Mean and standard error of per-sample values.",
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("float64")}),
        )

    def _compute(self, predictions):
        n = len(predictions)
        if n == 0:
            return {"mean": float("nan"), "stderr": float("nan")}
        mean = sum(predictions) / n
        if n < 2:
            return {"mean": mean, "stderr": float("nan")}
        var = sum((x - mean) ** 2 for x in predictions) / (n - 1)
        return {"mean": mean, "stderr": math.sqrt(var / n)}
