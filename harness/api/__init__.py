"""The public contract (the plugin API, version :data:`PLUGIN_API_VERSION`): everything a plugin or a benchmark may import from the core, besides the
LM toolkit :mod:`harness.lm` and the dataset adapters :mod:`harness.data`. A test fails if a
module under ``plugins/`` or ``benchmarks/`` imports any other part of ``harness``.

What a plugin implements (each declares a unique ``name``, a one-line ``description`` and a
``Config`` dataclass whose fields become CLI flags):

- :class:`PolicyOptimizer` — an algorithm: ``train(ctx: TrainContext) -> Policy``;
- :class:`RewardModel` — ``fit(ctx: RewardFitContext) -> FittedRewardModel`` on preference data;
- :class:`Evaluator` — ``evaluate(batch: EvalBatch) -> {metric: value}`` on held-out prompts;
- :class:`Benchmark` — data plus a gold reward r* (``Config`` subclasses :class:`BenchmarkConfig`).

Who sees what (the fairness rules): an optimizer gets the proxy reward model r̂, never r*; a
reward model gets preference data (texts, token ids, rankings), never r*; only the simulated
annotator and the evaluators see r*.
"""

from __future__ import annotations

from harness import hookimpl, parallel  # parallel: the collectives of a data-parallel train (--num-processes)
from harness.api.benchmark import Benchmark, RunInfo
from harness.api.budget import Budget, BudgetExceeded
from harness.api.evaluation import EvalBatch, Evaluator
from harness.api.plugin import EmptyConfig, Plugin
from harness.api.policy import Policy
from harness.api.preferences import (
    FittedRewardModel,
    PreferenceData,
    PreferenceItem,
    PreferenceRequest,
    RewardFitContext,
    RewardModel,
    annotation_cost,
)
from harness.api.toolkit import LMToolkit
from harness.api.training import PolicyOptimizer, TrainContext
from harness.benchmark_config import BenchmarkConfig

# argparse types for a plugin command's hand-written flags (``harness bench ppo``): one-line errors
from harness.config import (
    config_dict,
    finite_float,
    help_field,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from harness.errors import NonFiniteError, UsageError
from harness.fingerprint import source_fingerprint
from harness.rollout import GenerationSettings, Rollout

#: The plugin API's version, ``MAJOR.MINOR``. A minor release may add names and deprecate others
#: (a deprecated name keeps working, with a DeprecationWarning naming its replacement, for at
#: least one more minor release); only a major release removes or changes a name without that
#: notice. The public API is ``__all__`` here and in :mod:`harness.lm` and :mod:`harness.data`.
PLUGIN_API_VERSION = "1.0"

__all__ = [
    "PLUGIN_API_VERSION", "Benchmark", "BenchmarkConfig", "Budget", "BudgetExceeded", "EvalBatch", "Evaluator",
    "FittedRewardModel", "GenerationSettings", "LMToolkit", "NonFiniteError", "Plugin", "Policy", "PolicyOptimizer",
    "PreferenceData", "PreferenceItem", "PreferenceRequest", "RewardFitContext", "RewardModel", "Rollout", "RunInfo",
    "TrainContext", "UsageError", "annotation_cost", "config_dict", "finite_float", "help_field", "hookimpl",
    "non_negative_float", "non_negative_int", "parallel", "positive_float", "positive_int", "source_fingerprint",
]  # fmt: skip

# The contract's classes are documented, pickled and named in messages as ``harness.api.X``
# (where plugins import them from), not by the submodule that defines them.
for _cls in (Benchmark, RunInfo, EvalBatch, Evaluator, EmptyConfig, Plugin, Budget, BudgetExceeded, Policy, FittedRewardModel,
             PreferenceData, PreferenceItem, PreferenceRequest, RewardFitContext, RewardModel, LMToolkit, PolicyOptimizer,
             TrainContext):  # fmt: skip
    _cls.__module__ = __name__
del _cls
