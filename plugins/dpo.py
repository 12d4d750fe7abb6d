"""``dpo``: Direct Preference Optimization (Rafailov et al. 2023) through TRL 1.16's ``DPOTrainer``,
offline, on the benchmark's annotated preference pairs.

DPO asks the runner for pairs (:meth:`DPO.preference_request`): ``annotation_budget`` pairs of
π_sft's samples ranked by the simulated annotator (or, on a benchmark with human preferences, that
many human pairs) — the very pairs the ``pairwise`` reward model is fitted on, charged to the run
as annotations. It then minimises, over ``num_epochs`` passes,

    −log σ(β · [(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))])

with π_ref = π_sft (``ctx.ref_model``, handed to TRL). It samples nothing (no episode of
``ctx.budget`` is spent) and never queries the proxy reward model.

Tokens: each pair is tokenized the harness's way (``PreferenceData.rollout``): a response ends
with EOS exactly when the sampled one did. TRL's own preprocessing appends EOS to *every* chosen
and rejected text (``add_eos`` in ``DPOTrainer._prepare_dataset``), which would teach the policy
that a response cut off at ``max_new_tokens`` ended there; so the pairs reach TRL already tokenized
and its text preprocessing is skipped (:class:`PairsDPOTrainer`, the only override).

Defaults, and why: β = 0.1 (TRL's and the paper's); batches of 32 pairs, 2 epochs, lr 3e-4 (TRL's
1e-6 is for billion-parameter models and leaves a GPT-2 2×128 where it was). On the embedded
``sentiment`` benchmark (its 4000 pairs; gold r* at KL(π‖π_ref) in nats; π_sft: gold 0.07, ``ppo``
0.81 @ 6.5): lr 1e-4 × 2 epochs gave 0.34 @ 1.1, lr 1e-4 × 4 epochs 0.44 @ 6.7, lr 3e-4 × 2 epochs
0.49 @ 6.8 and 0.43 @ 6.3 (two runs) — the default, at about ``ppo``'s KL so that the two compare at
one KL. Log-probs are at temperature 1 (the policy's own), as DPO defines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.api import (
    Policy,
    PolicyOptimizer,
    PreferenceData,
    PreferenceRequest,
    TrainContext,
    UsageError,
    help_field,
    hookimpl,
    parallel,
)


#: the loss types (of those offered) whose loss reads ``label_smoothing`` in TRL 1.16's DPOTrainer
LOSSES_WITH_LABEL_SMOOTHING = ("robust",)


@dataclass
class DPOConfig:
    beta: float = help_field("β: the implicit KL strength (higher stays closer to π_sft)", 0.1)
    lr: float = help_field("AdamW learning rate, linearly decayed to 0 (tuned on the embedded benchmark: see the docstring)", 3e-4)
    num_epochs: int = help_field("passes over the preference pairs", 2)
    batch_size: int = help_field("pairs per AdamW step", 32)
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = help_field(
        "TRL's loss_type: sigmoid = DPO, ipo = IPO (β is its τ), hinge = SLiC, robust = rDPO (with --label-smoothing)", "sigmoid")
    label_smoothing: float = help_field("the assumed share of flipped labels (robust DPO); 0: none", 0.0)
    max_grad_norm: float = help_field("clip the gradient norm to this", 1.0)

    def __post_init__(self):
        if not self.beta > 0:
            raise ValueError(f"--beta must be > 0, got {self.beta}")
        if not self.lr > 0 or not self.max_grad_norm > 0:
            raise ValueError("--lr and --max-grad-norm must be > 0")
        if self.num_epochs < 1 or self.batch_size < 1:
            raise ValueError("--num-epochs and --batch-size must be >= 1")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"--label-smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing and self.loss_type not in LOSSES_WITH_LABEL_SMOOTHING:
            # accepted and then ignored would be a silent no-op: TRL 1.16's sigmoid, ipo and hinge losses never read it
            raise ValueError(f"--label-smoothing {self.label_smoothing:g} is used only by --loss-type "
                             f"{' or '.join(LOSSES_WITH_LABEL_SMOOTHING)} (rDPO); --loss-type {self.loss_type} ignores it")  # fmt: skip


def pair_columns(preferences: PreferenceData) -> dict[str, list[list[int]]]:
    """``prompt_ids``, ``chosen_ids``, ``rejected_ids`` of every pair (best vs worst of each item),
    tokenized as the harness does: EOS at the end of a response only where it ended."""
    rollout, rankings = preferences.rollout()
    k = preferences.k
    query_ids, query_mask = rollout.query_ids.tolist(), rollout.query_mask.tolist()
    response_ids, response_mask = rollout.response_ids.tolist(), rollout.response_mask.tolist()

    def response(row: int) -> list[int]:
        return [t for t, m in zip(response_ids[row], response_mask[row]) if m]

    columns: dict[str, list[list[int]]] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": []}
    for item, ranking in enumerate(rankings.tolist()):
        first = item * k
        columns["prompt_ids"].append([t for t, m in zip(query_ids[first], query_mask[first]) if m])
        columns["chosen_ids"].append(response(first + ranking[0]))
        columns["rejected_ids"].append(response(first + ranking[-1]))
    return columns


def pairs_trainer_class():
    """TRL's ``DPOTrainer`` taking pairs that are already tokenized (see the module docstring)."""
    from trl import DPOTrainer

    class PairsDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            missing = {"prompt_ids", "chosen_ids", "rejected_ids"} - set(dataset.column_names)
            if missing:
                raise ValueError(f"expected tokenized pairs; missing columns {sorted(missing)}")
            return dataset  # TRL would re-tokenize text and append EOS to every completion

    return PairsDPOTrainer


class DPO(PolicyOptimizer):
    name = "dpo"
    description = "DPO (TRL's DPOTrainer), offline on the benchmark's annotated pairs; no sampling, no reward model"
    Config = DPOConfig
    #: ``--num-processes N``: TRL's Trainer wraps the policy in DDP on the harness's process group; each rank
    #: takes batch_size / N pairs of every batch (accelerate shards one shuffled order), gradients are
    #: averaged: the steps of one process, to float rounding
    data_parallel = True

    def check_data_parallel(self, n: int) -> None:
        if self.config.batch_size % n:
            raise UsageError(f"--num-processes {n}: --batch-size {self.config.batch_size} must split evenly over the processes")

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest:
        """Pairs, as many as the annotation budget buys (the ``pairwise`` reward model's data)."""
        return PreferenceRequest(k=2, count=annotation_budget)

    def train(self, ctx: TrainContext) -> Policy:
        from datasets import Dataset
        from harness_plugins.trl_support import run_trainer, trainer_arguments, trl_tokenizer
        from trl import DPOConfig as TRLDPOConfig

        c = self.config
        if ctx.preferences is None:
            raise UsageError("dpo learns from annotated preference pairs, and the context has none (ctx.preferences is None): "
                             "run it through the harness runner, which passes the pairs dpo.preference_request asks for")  # fmt: skip
        if len(ctx.preferences) == 0:
            raise UsageError("dpo got no preference pairs (the annotation budget is 0)")
        dataset = Dataset.from_dict(pair_columns(ctx.preferences))
        args = TRLDPOConfig(**trainer_arguments(
            ctx,
            learning_rate=c.lr,
            lr_scheduler_type="linear",
            max_grad_norm=c.max_grad_norm,
            per_device_train_batch_size=c.batch_size // parallel.state().world_size,
            gradient_accumulation_steps=1,
            num_train_epochs=c.num_epochs,
            beta=c.beta,
            loss_type=[c.loss_type],
            label_smoothing=c.label_smoothing,
            max_length=None,  # responses are at most max_new_tokens long: nothing to truncate
            precompute_ref_log_probs=False,
            disable_dropout=True,
        ))  # fmt: skip

        def make_trainer():
            return pairs_trainer_class()(model=ctx.model, ref_model=ctx.ref_model, args=args, train_dataset=dataset,
                                         processing_class=trl_tokenizer(ctx.tokenizer))  # fmt: skip

        trainer, timings = run_trainer(ctx, make_trainer, self.name)
        ctx.log(trainer.state.global_step, {
            "time/trl_setup_s": timings["setup_s"],
            "time/trl_train_s": timings["train_s"],
            "time/pairs_per_second": len(dataset) * c.num_epochs / timings["train_s"],
        })  # fmt: skip
        return Policy(ctx.model, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(DPO)
