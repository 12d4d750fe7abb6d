"""What ``grpo`` and ``rloo`` share: TRL's online trainers sampling groups of completions per
prompt from π_θ and scoring them with the proxy r̂. One config base (the fields both algorithms
have, with the same meanings and checks) and one optimizer base (data-parallel sharding, the
budget's unit, the training loop in :func:`~harness_plugins.trl_support.train_online`); each
algorithm's file keeps its own defaults, help texts, estimator options and docstring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from harness_plugins.trl_support import check_online_config, check_online_data_parallel

from harness.api import Policy, PolicyOptimizer, TrainContext, help_field


#: TRL's default ε of the clipped surrogate
EPSILON_DEFAULT = 0.2


@dataclass
class OnlineGroupConfig:
    batch_size: int = help_field("completions (episodes) sampled per generation round: prompts × --num-generations", 64)
    num_generations: int = help_field("completions per prompt (>= 2)", 4)
    num_mini_batches: int = help_field("AdamW steps per round, each on a slice of the round (TRL's steps_per_generation)", 4)
    num_iterations: int = help_field("passes over each round's completions (> 1 reuses samples off-policy, clipped)", 1)
    lr: float = help_field("AdamW learning rate, linearly decayed to 0 (tuned on the embedded benchmark: see the docstring)", 1e-4)
    beta: float = help_field("β: weight of the KL(π‖π_ref) penalty (0, --no-kl: none)", 0.05, aliases={"no_kl": 0.0})
    epsilon: float = help_field("ε of the clipped surrogate (with more than one AdamW step per round)", EPSILON_DEFAULT)
    max_grad_norm: float = help_field("clip the gradient norm to this", 1.0)

    def __post_init__(self):
        check_online_config(self)
        if self.num_mini_batches * self.num_iterations == 1 and self.epsilon != EPSILON_DEFAULT:
            # accepted and then ignored would be a silent no-op: one AdamW step per round leaves the policy that
            # sampled the round unchanged when the loss is taken, so the clipped ratio is exactly 1
            raise ValueError(f"--epsilon {self.epsilon:g} has no effect with one AdamW step per round (--num-mini-batches 1, "
                             "--num-iterations 1): the ratio it clips is 1; take more steps per round, or leave --epsilon")  # fmt: skip


class OnlineGroupOptimizer(PolicyOptimizer):
    """A TRL online trainer (``trainer`` and its ``trainer_config`` class, named in ``trl``) run by
    :func:`~harness_plugins.trl_support.train_online`, with :meth:`trainer_options` for the
    algorithm's own TRL settings."""

    #: the names of the trainer and its config class in ``trl`` (imported at train time: TRL is slow to import)
    trainer: ClassVar[str] = ""
    trainer_config: ClassVar[str] = ""
    #: ``--num-processes N``: each rank samples and trains on 1/N of every round (TRL's DDP and sharded sampler);
    #: TRL gathers the scores before the group baselines; the budget counts every rank's completions
    data_parallel = True

    def check_data_parallel(self, n: int) -> None:
        check_online_data_parallel(self.config, n)

    def episodes_per_update(self) -> int:
        return self.config.batch_size

    def trainer_options(self) -> dict[str, Any]:
        """The algorithm's own settings of TRL's config class (``loss_type=…``)."""
        return {}

    def train(self, ctx: TrainContext) -> Policy:
        import trl
        from harness_plugins.trl_support import train_online

        return train_online(ctx, self.config, self.name, getattr(trl, self.trainer), getattr(trl, self.trainer_config),
                            **self.trainer_options())  # fmt: skip
