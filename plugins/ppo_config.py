"""PPO's options: one dataclass whose fields become ``harness run --algo ppo`` flags.

Numbers in brackets point at the PPO checklist (the project's PPO_DETAILS.md): [B] = Huang, Liu,
von Werra, "The N Implementation Details of RLHF with PPO" (2023); [N] = Huang et al., "The N+
Implementation Details of RLHF with PPO" (arXiv 2403.17031). Where the sources disagree the choice is
a field, and the default says which source it follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from harness.api import help_field


@dataclass
class AdamWConfig:
    """The optimizer options PPO's family and RRHF share ([B] 9): AdamW with a TF-style epsilon,
    a learning rate annealed linearly to 0 over the updates, and gradient-norm clipping. Each
    algorithm sets its own learning rate (``lr``, tuned per algorithm)."""

    lr: float = help_field("AdamW learning rate", 1e-4)
    adam_eps: float = help_field("AdamW epsilon; 1e-5 is the TF-style value of [B] 9 (PyTorch's default is 1e-8)", 1e-5)
    weight_decay: float = help_field("AdamW weight decay", 0.0)
    lr_decay: bool = help_field("anneal the learning rate linearly to 0 over the updates ([B] 9)", True)
    max_grad_norm: Optional[float] = help_field("clip each network's gradient norm to this (none: no clipping)", 1.0)


@dataclass
class PPOConfig(AdamWConfig):
    """PPO with a per-token KL penalty to π_ref (Ziegler et al. 2019; Ouyang et al. 2022).

    [N] 15 typical settings: β = 0.05, 4 PPO epochs, clip 0.2, vf_coef 0.1, γ = 1, λ = 0.95
    (the sampling temperature is the benchmark's, ``ctx.generation``, for every sampler alike).
    The learning rate, batch and mini-batches are tuned on the embedded ``sentiment`` benchmark
    with its default budget (4096 episodes): 64 updates of 64 episodes, 8 AdamW steps each, at
    lr 3e-4 raise gold r* well above π_sft with KL ≈ 7 nats, while ``--no-kl`` hacks the proxy.
    """

    # -- rollouts and the update schedule ---------------------------------------------------
    batch_size: int = help_field("episodes (prompt–response pairs) sampled per PPO update", 64)
    num_ppo_epochs: int = help_field("passes over each rollout batch", 4)
    num_mini_batches: int = help_field("mini-batches per epoch (one AdamW step each)", 2)
    stop_at_eos: bool = help_field(
        "end a response at its first EOS ([N] 10); --no-stop-at-eos samples exactly max_new_tokens "
        "tokens with EOS as an ordinary token (TRL's stop_token=None, used by `harness bench ppo`)",
        True,
    )

    # -- optimizer ([B] 9): AdamWConfig's fields, this learning rate ------------------------------
    lr: float = help_field("AdamW learning rate (policy and critic; tuned on the embedded benchmark)", 3e-4)

    # -- PPO losses ([B] 7) -----------------------------------------------------------------------
    cliprange: float = help_field("ε of the clipped surrogate: ratio is clipped to [1−ε, 1+ε]", 0.2)
    cliprange_value: float = help_field("clip of the value prediction around the rollout's value", 0.2)
    vf_coef: float = help_field("weight of the value loss in the joint loss", 0.1)
    gamma: float = help_field("discount γ of GAE", 1.0)
    lam: float = help_field("λ of GAE", 0.95)
    whiten_advantages: bool = help_field("whiten advantages over the batch's response tokens ([B] 7)", True)
    whiten_rewards: bool = help_field("scale per-token rewards to unit variance, no mean shift ([B] 7, optional)", False)

    # -- KL penalty to π_ref ([B] 1, 6) ------------------------------------------------------------
    kl_coef: float = help_field(
        "β of the per-token penalty −β·KL in the reward (the initial one when --adaptive-kl); 0 (or --no-kl) is the "
        "KL-ablated PPO, stored as ppo-nokl; KL is still logged and evaluated",
        0.05,
        aliases={"no_kl": 0.0},
    )
    kl_estimator: Literal["k1", "k3"] = help_field(
        "per-token KL estimate in the reward: k1 = log π − log π_ref, k3 = (r − 1) − log r with r = π_ref / π", "k1"
    )
    adaptive_kl: bool = help_field("adapt β toward --target-kl (Ziegler et al.'s controller, [B] 6)", False)
    target_kl: float = help_field("target KL(π‖π_ref) per response, in nats, of the adaptive controller", 6.0)
    kl_horizon: int = help_field("horizon, in episodes, of the adaptive controller", 10000)

    # -- score and critic ---------------------------------------------------------------------------
    missing_eos_penalty: Optional[float] = help_field(
        "EOS trick ([N] 12), TRL's form: subtract this from the score of a response with no EOS", None
    )
    missing_eos_score: Optional[float] = help_field(
        "EOS trick ([N] 12), [N]'s form: replace the score of a response with no EOS by this value (e.g. -1)", None
    )
    critic_init: Literal["reward_model", "policy"] = help_field(
        "initialise the critic's backbone from the reward model ([N] 13; falls back to the policy when the RM "
        "has no model) or from the policy; the value head starts at zero either way ([B] 3)",
        "reward_model",
    )

    # -- arithmetic -----------------------------------------------------------------------------------
    precision: Literal["fp32", "bf16"] = help_field(
        "fp32, or bf16 mixed precision: forwards (sampling, scoring, training) under torch.autocast with bf16 "
        "matmuls; weights, optimizer state, log-probs, ratios, advantages and losses stay fp32",
        "fp32",
    )

    def __post_init__(self):
        def positive(flag: str, value) -> None:
            if not value > 0:
                raise ValueError(f"{flag} must be > 0, got {value}")

        def non_negative(flag: str, value) -> None:
            if not value >= 0:
                raise ValueError(f"{flag} must be >= 0, got {value}")

        for flag, value in [("--batch-size", self.batch_size), ("--num-ppo-epochs", self.num_ppo_epochs),
                            ("--num-mini-batches", self.num_mini_batches), ("--lr", self.lr),
                            ("--adam-eps", self.adam_eps), ("--target-kl", self.target_kl),
                            ("--kl-horizon", self.kl_horizon)]:  # fmt: skip
            positive(flag, value)
        for flag, value in [("--weight-decay", self.weight_decay), ("--cliprange", self.cliprange),
                            ("--cliprange-value", self.cliprange_value), ("--vf-coef", self.vf_coef),
                            ("--kl-coef", self.kl_coef)]:  # fmt: skip
            non_negative(flag, value)
        if self.max_grad_norm is not None:
            positive("--max-grad-norm", self.max_grad_norm)
        if self.batch_size % self.num_mini_batches:
            raise ValueError(
                f"--batch-size ({self.batch_size}) must be a multiple of --num-mini-batches ({self.num_mini_batches})"
            )
        if not 0 <= self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ValueError(f"--gamma and --lam must be in [0, 1], got {self.gamma} and {self.lam}")
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"--kl-estimator must be k1 or k3, got {self.kl_estimator!r}")
        if self.critic_init not in ("reward_model", "policy"):
            raise ValueError(f"--critic-init must be reward_model or policy, got {self.critic_init!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.adaptive_kl and self.kl_coef == 0:
            raise ValueError("--adaptive-kl needs an initial β > 0: drop --no-kl (or --kl-coef 0) or --adaptive-kl")
        if self.missing_eos_penalty is not None and self.missing_eos_score is not None:
            raise ValueError("give one of --missing-eos-penalty and --missing-eos-score, not both")

    @property
    def mini_batch_size(self) -> int:
        return self.batch_size // self.num_mini_batches


@dataclass
class PPONoKLConfig(PPOConfig):
    """The KL-ablated PPO: PPO's options with the KL penalty off by default."""

    kl_coef: float = help_field(
        "β of the per-token KL penalty: 0, the KL-ablated PPO (for a β > 0 use --algo ppo); KL is still logged",
        0.0,
        aliases={"no_kl": 0.0},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.kl_coef != 0:  # a contradiction, not silently another experiment
            raise ValueError(f"--kl-coef {self.kl_coef}: ppo-nokl is PPO with β = 0; for a β > 0 use --algo ppo")
