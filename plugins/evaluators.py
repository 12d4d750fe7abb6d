"""Built-in evaluators. Each reads what it needs from the shared :class:`EvalBatch` (computed
once per run) and aggregates it with an `evaluate` module from ``plugins/metrics``."""

from __future__ import annotations

from harness_plugins.metrics import load_metric

from harness.api import EvalBatch, Evaluator, hookimpl


def _mean(values) -> float:
    return load_metric("mean_score").compute(predictions=[float(v) for v in values])["mean"]


class GoldReward(Evaluator):
    name = "gold"
    description = "mean gold reward r* of the policy's samples on held-out prompts"
    higher_is_better = {"eval/gold": True}
    needs_gold = True

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        return {"eval/gold": _mean(batch.gold)}


class ProxyReward(Evaluator):
    name = "proxy"
    description = "mean proxy reward r̂ (the reward model optimized against)"
    higher_is_better = {"eval/proxy": True}

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        return {"eval/proxy": _mean(batch.proxy)}


class KL(Evaluator):
    name = "kl"
    description = "KL(π‖π_ref) per sequence: Monte-Carlo on π's samples, or analytic when known"
    higher_is_better = {"eval/kl": False}

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        if batch.policy.analytic_kl is not None:
            return {"eval/kl": float(batch.policy.analytic_kl)}
        kl = batch.kl_per_sequence
        return {"eval/kl": _mean(kl) if kl is not None else float("nan")}


class WinRate(Evaluator):
    name = "win-rate"
    description = "win rate against π_sft on the same prompts, judged by r* (ties count half)"
    higher_is_better = {"eval/win_rate": True}
    needs_gold = True

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        result = load_metric("win_rate").compute(predictions=batch.gold.tolist(), references=batch.ref_gold.tolist())
        return {"eval/win_rate": result["win_rate"]}


class Diversity(Evaluator):
    name = "diversity"
    description = "distinct-1 and distinct-2 over all held-out samples"
    higher_is_better = {"eval/distinct_1": True, "eval/distinct_2": True}

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        result = load_metric("distinct_n").compute(predictions=batch.rollout.responses)
        return {"eval/distinct_1": result["distinct_1"], "eval/distinct_2": result["distinct_2"]}


class Length(Evaluator):
    name = "length"
    description = "mean response length in tokens (EOS included) and the share that ended with EOS"
    higher_is_better = {"eval/length": None, "eval/eos_rate": True}

    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        return {"eval/length": _mean(batch.rollout.lengths), "eval/eos_rate": _mean(batch.rollout.ended.float())}


@hookimpl
def harness_register_evaluators(registry):
    for cls in (GoldReward, ProxyReward, KL, WinRate, Diversity, Length):
        registry.add(cls)
