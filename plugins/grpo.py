"""``grpo``: Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath) through TRL 1.16's
``GRPOTrainer``, online, with the proxy reward model r̂ as its reward function.

Per generation round, ``batch_size / num_generations`` train prompts get ``num_generations``
completions each from π_θ (TRL samples them with ``generate()``: pure temperature sampling at the
benchmark's temperature, at most ``max_new_tokens`` tokens, stopping at EOS — the harness's
sampler); r̂ scores them; the advantage of a completion is its score minus its group's mean
(divided by the group's std with ``--scale-rewards group``); the policy takes
``num_mini_batches × num_iterations`` AdamW steps on TRL's clipped surrogate, with ``beta`` ×
the per-token k3 estimate of KL(π_θ‖π_ref) added to the loss (not to the reward, unlike PPO and
RLOO).

Budget: every completion TRL samples is one episode, charged when r̂ scores it
(:class:`~harness_plugins.trl_support.ProxyReward`); ``max_steps`` is sized so that the rounds spend
exactly the budget's whole multiples of ``batch_size`` (a remainder stays unspent, as in ``ppo``).
Every score is an RM query.

Defaults, and why: β = 0.05 — TRL's GRPO default is 0 (DAPO and Dr. GRPO drop the KL term), but
the harness compares algorithms *with* a KL penalty by default and every other built-in uses 0.05
(``ppo``'s [N] 15 value; ``rloo``'s TRL default), so ``--beta 0`` (``--no-kl``) is GRPO's KL
ablation, not its default. 64 completions per round (16 prompts × 4), ``ppo``'s batch; the DAPO
token-level loss (TRL's default, no length bias) and group-std scaling (GRPO's own); 4 AdamW steps
per round at lr 1e-4 (TRL's 1e-6 is for billion-parameter models). From a grid on the embedded
``sentiment`` benchmark at its default budget (4096 episodes; gold r* at KL(π‖π_ref) in nats, share
of responses ending with EOS; π_sft: gold 0.07, ``ppo`` 0.81 @ 6.5, EOS 0.96): 1 step per round at
lr 3e-4 gave 0.53 @ 6.8 (EOS 0.46); lr 1e-3 0.65 @ 19.9 (EOS 0.05); 4 steps at lr 3e-4 0.76 @ 7.2
and, seed 1, 0.71 @ 19.7 (EOS 0.04); 8 steps at lr 1e-4 0.62 @ 13.0, 0.70 @ 9.4, 0.78 @ 8.8 (seeds
0–2; EOS 0.07–0.86); 4 steps at lr 2e-4 0.48 @ 8.1 (EOS 0.10); 4 steps at lr 1e-4, the default,
0.49 @ 3.8, 0.65 @ 6.9, 0.69 @ 7.0 (seeds 0–2; EOS 0.73–0.84). GRPO's std-scaled advantages make
it the more aggressive of the two TRL online methods: larger steps buy proxy reward with long
responses that no longer end (the proxy likes length): watch ``eval/eos_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness_plugins.trl_online import OnlineGroupConfig, OnlineGroupOptimizer

from harness.api import help_field, hookimpl


@dataclass
class GRPOConfig(OnlineGroupConfig):
    num_generations: int = help_field("completions per prompt: the group whose mean score is the baseline (>= 2)", 4)
    num_iterations: int = help_field("passes over each round's completions (μ of the GRPO paper; > 1 reuses samples off-policy)", 1)
    beta: float = help_field("β: weight of the per-token k3 KL(π‖π_ref) term in the loss (0, --no-kl: none)", 0.05, aliases={"no_kl": 0.0})
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = help_field(
        "how token losses are averaged (TRL's loss_type): dapo = over all tokens of the batch, grpo = per sequence", "dapo")
    scale_rewards: Literal["group", "batch", "none"] = help_field("divide advantages by the std of the group, the batch, or not", "group")


class GRPO(OnlineGroupOptimizer):
    name = "grpo"
    description = "GRPO (TRL's GRPOTrainer): group-mean baselines over num_generations samples per prompt, KL to π_sft in the loss"
    Config = GRPOConfig
    trainer, trainer_config = "GRPOTrainer", "GRPOConfig"

    def trainer_options(self) -> dict:
        return {"loss_type": self.config.loss_type, "scale_rewards": self.config.scale_rewards}


@hookimpl
def harness_register_algorithms(registry):
    registry.add(GRPO)
