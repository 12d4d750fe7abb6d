"""distinct-n: the share of distinct n-grams among all n-grams of a set of generations (Li et al. 2016)."""

import datasets
import evaluate

_DESCRIPTION = "Distinct-1 and distinct-2: distinct n-grams / total n-grams over all predictions (diversity)."
_KWARGS = """
Args:
    predictions: list of generated texts (whitespace-tokenised).
Returns:
    distinct_1, distinct_2: floats in [0, 1]; 0 when there is no n-gram at all.
Example:
    >>> metric = DistinctN()
    >>> metric.compute(predictions=["a b a", "a b"])
    {'distinct_1': 0.4, 'distinct_2': 0.6666666666666666}
"""


class DistinctN(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Li et al., A Diversity-Promoting Objective Function for Neural Conversation Models, 2016",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions):
        result = {}
        for n in (1, 2):
            grams = [tuple(words[i : i + n]) for text in predictions for words in [text.split()] for i in range(len(words) - n + 1)]
            result[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else 0.0
        return result
