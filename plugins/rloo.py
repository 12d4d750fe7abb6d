"""``rloo``: REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics")
through TRL 1.16's ``RLOOTrainer``, online, with the proxy reward model r̂ as its reward function.

Per generation round, ``batch_size / num_generations`` train prompts get ``num_generations``
completions each from π_θ (TRL's ``generate()``: pure temperature sampling at the benchmark's
temperature, at most ``max_new_tokens`` tokens, stopping at EOS — the harness's sampler). The
reward of a completion is r̂ − β · Σ_t (log π_θ − log π_ref) (the k1 KL estimate summed over the
sequence: in the reward, as in ``ppo`` and the RLOO paper); its advantage is that reward minus the
mean reward of the *other* completions of its prompt; the policy takes ``num_mini_batches ×
num_iterations`` AdamW steps on TRL's clipped surrogate.

Budget: every completion TRL samples is one episode, charged when r̂ scores it
(:class:`~harness_plugins.trl_support.ProxyReward`); ``max_steps`` is sized so that the rounds spend
exactly the budget's whole multiples of ``batch_size`` (a remainder stays unspent, as in ``ppo``).
Every score is an RM query.

Defaults, and why: β = 0.05 (TRL's RLOO default and ``ppo``'s); 64 completions per round, ``ppo``'s
batch, as 16 prompts × 4 (TRL's default of 2 per prompt makes the leave-one-out baseline a single
sample; 4 is the paper's k = 4 and ``grpo``'s group size, so the two differ in the estimator only);
8 AdamW steps per round (``--num-mini-batches 8``), as ``ppo``'s 4 epochs × 2 mini-batches, at lr 1e-4
(TRL's 1e-6 is for billion-parameter models). From a one-seed grid on the embedded ``sentiment``
benchmark at its default budget (4096 episodes; gold r* at KL(π‖π_ref) in nats, share of responses
ending with EOS; π_sft: gold 0.07): 1 step per round at lr 3e-4 gave 0.32 @ 6.4 (EOS 0.25); lr 3e-4
with 4 steps 0.66 @ 10.7 (EOS 0.13); lr 1e-3 0.65 @ 10.8 (EOS 0.39); lr 1e-4 with 4 steps 0.52 @ 6.0,
with 8 steps 0.62 @ 5.3 (EOS 0.84) — and on seeds 1, 2 0.74 @ 7.0 and 0.73 @ 5.9 (EOS 0.83, 0.94).
``ppo`` on the same run: 0.81 @ 6.5 (EOS 0.96). Larger steps buy proxy reward with long responses
that no longer end (the proxy likes length): watch ``eval/eos_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness_plugins.trl_online import OnlineGroupConfig, OnlineGroupOptimizer

from harness.api import help_field, hookimpl


@dataclass
class RLOOConfig(OnlineGroupConfig):
    num_generations: int = help_field("completions per prompt: each one's baseline is the mean reward of the others (>= 2)", 4)
    num_mini_batches: int = help_field("AdamW steps per round, each on a slice of the round (TRL's steps_per_generation)", 8)
    beta: float = help_field("β: reward = r̂ − β · Σ_t log(π/π_ref) over the completion (0, --no-kl: none)", 0.05, aliases={"no_kl": 0.0})
    normalize_advantages: bool = help_field("whiten the advantages over each round", False)


class RLOO(OnlineGroupOptimizer):
    name = "rloo"
    description = "RLOO (TRL's RLOOTrainer): REINFORCE with leave-one-out baselines over num_generations samples, KL to π_sft in the reward"
    Config = RLOOConfig
    trainer, trainer_config = "RLOOTrainer", "RLOOConfig"

    def trainer_options(self) -> dict:
        return {"normalize_advantages": self.config.normalize_advantages}


@hookimpl
def harness_register_algorithms(registry):
    registry.add(RLOO)
