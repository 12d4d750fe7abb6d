"""What the ``dpo``, ``grpo`` and ``rloo`` plugins share: the glue between the harness contract and
TRL 1.16's trainers. Not an algorithm (it registers nothing); it imports only ``harness.api``,
``harness.lm``, TRL, transformers, datasets and torch, like any third-party plugin.

What TRL needs from us, and why (each measured on the embedded GPT-2s):

- **A tokenizer whose PAD is EOS** (:func:`trl_tokenizer`). The harness keeps ``<pad>`` outside the
  models' vocabulary; TRL pads with ``pad_token_id`` and embeds the padding (attention masks hide
  it), which raises ``IndexError`` in ``wte``. The copy goes to TRL; the returned policy keeps the
  harness's own tokenizer.
- **Positions from the attention mask** (:func:`mask_positions`). ``generate()`` numbers a
  left-padded row's positions from its first real token, but TRL's training forward passes no
  ``position_ids``, so GPT-2 (absolute position embeddings) would score a left-padded row at
  positions shifted by its padding: the log-probs TRL optimises would not be those of the policy
  that sampled. A forward pre-hook fills ``position_ids`` from the mask, as the harness's sampler
  and ``generate()`` do. Rows without left padding (DPO's right-padded pairs, equal-length
  prompts) are unchanged by it.
- **Plain fp32 CPU training and no side effects on the run**: :func:`trainer_arguments` (no
  bf16, no gradient checkpointing, no checkpoints, no hub or trackers, ``output_dir`` inside the
  run folder, the run's seed) and :func:`restore_after_trl` (TRL patches ``model.forward`` with a
  fused LM head and writes the pad id into the model's config; both are undone, the model is put
  back in eval mode).
- **Data-parallel runs** (``harness run --num-processes N``): TRL's ``Accelerator`` joins the
  process group the harness set up (DDP, a data loader sharded per rank, metrics gathered over
  ranks before they are logged, so every rank logs the same numbers); the plugins divide their
  per-device batch by N, and :class:`ProxyReward` charges the budget for every rank's completions.
- **Curves in the harness** (:class:`HarnessLog`): every TRL log becomes ``ctx.log(step, ...)``
  with namespaced keys, so a NaN loss stops the run like any other optimizer's.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PrinterCallback, ProgressCallback, TrainerCallback, TrainingArguments

from harness.api import Policy, Rollout, TrainContext, UsageError, parallel
from harness.lm import encode_prompts, tokenizer_for_trainers

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = [
    "LOG_NAMES", "HarnessLog", "ProxyReward", "mask_positions", "online_arguments", "planned_rounds", "prompt_dataset",
    "restore_after_trl", "run_trainer", "same_weights", "train_online", "trainer_arguments", "trl_tokenizer",
]  # fmt: skip


#: transformers 5.2x renamed gradient_checkpointing (TRL's configs default it to True) to activation_checkpointing
CHECKPOINTING = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ else "gradient_checkpointing"


def trl_tokenizer(tokenizer):
    """A copy of the harness tokenizer for TRL: PAD = EOS (TRL embeds its padding) and no special
    tokens added to a text (the ids the harness samples and scores; harness.lm.tokenizer_for_trainers)."""
    return tokenizer_for_trainers(tokenizer)


def trainer_arguments(ctx: TrainContext, **settings: Any) -> dict[str, Any]:
    """The ``TrainingArguments`` every TRL plugin shares, then ``settings``: fp32 on the run's
    device, the run's seed, one log per step, nothing saved, nothing reported elsewhere."""
    device = torch.device(ctx.device)
    return {
        "output_dir": str(ctx.run_dir / "trl"),  # TRL writes nothing there with save_strategy="no"
        "use_cpu": device.type == "cpu",
        "bf16": False,  # TRL's configs default to bf16
        "fp16": False,
        CHECKPOINTING: False,  # TRL's default is True: slower, and it would stay switched on in the model
        "save_strategy": "no",
        "report_to": [],
        "push_to_hub": False,
        "logging_steps": 1,
        "logging_strategy": "steps",
        "disable_tqdm": ctx.quiet,
        "seed": ctx.seed,
        "data_seed": ctx.seed,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "eval_strategy": "no",
        "ddp_find_unused_parameters": False,  # data-parallel (--num-processes): every parameter gets a gradient
        **settings,
    }


def planned_rounds(budget_left: int, episodes_per_round: int, flag: str) -> int:
    """Whole generation rounds that fit the budget (a remainder stays unspent, as in ``ppo``)."""
    rounds = budget_left // episodes_per_round
    if rounds == 0:
        raise UsageError(f"{flag} ({episodes_per_round} episodes per step) is more than the budget of {budget_left} episodes")
    return rounds


class ProxyReward:
    """The proxy reward model r̂ as a TRL reward function ``(prompts, completions, completion_ids, **kw) -> list[float]``.

    Each call scores one generation round, and every completion of it is charged to
    ``ctx.budget`` first (TRL has sampled them: they are episodes). The rollout is built from the
    token ids TRL sampled — the response ends with EOS exactly where TRL's completion does
    (TRL cuts a completion after its first EOS and keeps it) — with the harness's own tokenizer
    and padding, so r̂ sees what it would see from the harness's sampler. ``ctx.score`` counts the
    RM queries. Data-parallel, each rank scores its own equal share of the round and charges the
    budget and the RM queries for all ranks' shares, so every rank's budget is the global one."""

    __name__ = "proxy"  # TRL names the reward column after it: rewards/proxy/mean

    def __init__(self, ctx: TrainContext):
        self.ctx = ctx
        self.calls = 0

    def rollout(self, prompts: list[str], completion_ids: list[list[int]]) -> Rollout:
        tok, device = self.ctx.tokenizer, self.ctx.device
        query_ids, query_mask = encode_prompts(tok, prompts, device)
        width = max(1, max(len(ids) for ids in completion_ids))
        response_ids = torch.full((len(completion_ids), width), tok.pad_token_id, dtype=torch.long)
        for row, ids in enumerate(completion_ids):
            response_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        return Rollout(list(prompts), query_ids, query_mask, response_ids.to(device), tok)

    def __call__(self, prompts: list[str], completions: list[str], completion_ids: list[list[int]] | None = None, **kwargs) -> list[float]:
        if completion_ids is None:
            raise RuntimeError("TRL passed no completion_ids: the proxy reward needs the sampled tokens")
        others = len(completions) * (parallel.state().world_size - 1)  # data-parallel: the other ranks' equal shares
        self.ctx.budget.spend(len(completions) + others)  # every sampled completion is an episode
        self.calls += 1
        scores = self.ctx.score(self.rollout(prompts, completion_ids)).tolist()
        self.ctx.budget.count_rm_queries(others)
        return scores


class HarnessLog(TrainerCallback):
    """Every TRL log → ``ctx.log(global_step, metrics)``: the keys in ``names`` renamed (``loss`` →
    ``loss/policy``...), every other number under ``<prefix>/`` (``grpo/completions_mean_length``).
    A metric TRL logs as ``None`` (it was NaN on every row) is passed on as NaN, so that a NaN
    ``loss/*`` or ``objective/*`` stops the run."""

    SKIP = frozenset({"epoch", "total_flos", "train_samples_per_second", "train_steps_per_second"})

    def __init__(self, ctx: TrainContext, prefix: str, names: dict[str, str | None]):
        self.ctx, self.prefix, self.names = ctx, prefix, names

    def metrics(self, logs: dict[str, Any]) -> dict[str, float]:
        out = {}
        for key, value in logs.items():
            if key in self.SKIP or isinstance(value, (str, list, dict)):
                continue
            if key in self.names and self.names[key] is None:
                continue  # a duplicate of another key
            name = self.names.get(key) or f"{self.prefix}/{key.replace('/', '_')}"
            out[name] = math.nan if value is None else float(value)
        if "objective/kl_per_token" in out and "val/response_length" in out:
            # per sequence, as ppo's objective/kl: TRL's Σ kl / Σ tokens × its Σ tokens / completions
            out["objective/kl"] = out["objective/kl_per_token"] * out["val/response_length"]
        out["budget/episodes_used"] = float(self.ctx.budget.episodes_used)
        return out

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.ctx.log(state.global_step, self.metrics(logs))


class _QuietBar(ProgressCallback):
    """TRL's progress bar without a printed dict per step (the curves go to the run's log.txt)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def _fill_positions(module, args, kwargs):
    if kwargs.get("position_ids") is not None or kwargs.get("inputs_embeds") is not None:
        return None
    if kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None:
        return None  # generate() passes position_ids with every cached step
    mask = kwargs.get("attention_mask")
    if mask is None or mask.dim() != 2:
        return None  # no mask: no padding, arange is right
    kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp_min(0)
    return args, kwargs


@contextmanager
def mask_positions(model):
    """While inside, a forward of ``model`` without ``position_ids`` numbers each row's positions
    from its first attended token (see the module docstring: TRL's training forward vs
    ``generate()``). A model whose backbone takes no ``position_ids`` is left alone."""
    base = model.base_model if getattr(model, "base_model", None) is not None else model
    if "position_ids" not in inspect.signature(base.forward).parameters:
        yield
        return
    handle = base.register_forward_pre_hook(_fill_positions, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def restore_after_trl(*models) -> None:
    """Undo what TRL leaves on a model: its fused-LM-head ``forward`` (an instance attribute set by
    ``add_fused_lm_head``); then eval mode, as the harness keeps every model."""
    for model in models:
        if model is None:
            continue
        model.__dict__.pop("forward", None)
        model.eval()


class _NoPaddingWarning(logging.Filter):
    """Drops transformers' "We strongly recommend passing in an `attention_mask`" during TRL's
    generate(): it fires because a finished row keeps feeding PAD = EOS, which is masked anyway
    (TRL drops the mask only when it is all ones)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "passing in an `attention_mask`" not in record.getMessage()


@contextmanager
def _quiet_padding_warning():
    log, drop = logging.getLogger("transformers.modeling_utils"), _NoPaddingWarning()
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def same_weights(a, b) -> bool:
    """Whether two models hold the same parameters and buffers (names, shapes, values)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def run_trainer(ctx: TrainContext, make_trainer, name: str) -> tuple[Any, dict[str, float]]:
    """Build TRL's trainer (``make_trainer()``) and train ``ctx.model`` in place, with the position
    fix on every model TRL runs, the quiet bar and the harness log; restore the models and the
    config afterwards, even on failure. A reference model TRL built itself (GRPO and RLOO load it
    from the policy's ``name_or_path``) must hold π_sft's weights: checked against
    ``ctx.ref_model``. Returns (trainer, timings: ``setup_s`` = trainer construction, ``train_s``)."""
    model = ctx.model
    pad_ids = (model.config.pad_token_id, getattr(model.generation_config, "pad_token_id", None))
    eos_ids = model.generation_config.eos_token_id
    # TRL stops a completion at every id of generation_config.eos_token_id (some chat models list
    # several); the harness ends a response at the tokenizer's EOS only: one rule for both.
    model.generation_config.eos_token_id = ctx.tokenizer.eos_token_id
    trainer, timings = None, {}
    try:
        with ExitStack() as hooks:
            hooks.enter_context(mask_positions(model))
            hooks.enter_context(_quiet_padding_warning())
            t0 = time.perf_counter()
            with warnings.catch_warnings():  # TRL reads the deprecated model.is_gradient_checkpointing (transformers 5.2x)
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
                trainer = make_trainer()
            trainer.remove_callback(PrinterCallback)  # disable_tqdm=True would print every log dict
            if trainer.pop_callback(ProgressCallback) is not None:
                trainer.add_callback(_QuietBar)
            trainer.add_callback(HarnessLog(ctx, name, LOG_NAMES[name]))
            timings["setup_s"] = time.perf_counter() - t0
            wanted, got = torch.device(ctx.device), trainer.args.device
            if (wanted.type, wanted.index or 0) != (got.type, got.index or 0):
                raise UsageError(f"{name}: TRL trains on {got}, the run is on {wanted} (TRL uses the first visible GPU)")
            ref = getattr(trainer, "ref_model", None)
            if ref is not None:
                ref = trainer.accelerator.unwrap_model(ref)
                if ref is not ctx.ref_model and not same_weights(ref, ctx.ref_model):
                    raise UsageError(f"{name}: TRL's reference model (loaded from {model.config.name_or_path!r}) is not π_sft")
                hooks.enter_context(mask_positions(ref))
            t1 = time.perf_counter()
            trainer.train()
            timings["train_s"] = time.perf_counter() - t1
        trained = trainer.accelerator.unwrap_model(trainer.model)
        if trained is not model:  # TRL trains the instance it is given; make sure the harness's holds the weights
            model.load_state_dict(trained.state_dict())
    finally:
        ref = getattr(trainer, "ref_model", None) if trainer is not None else None
        restore_after_trl(model, ctx.ref_model, ref)
        model.config.pad_token_id = pad_ids[0]
        model.generation_config.pad_token_id = pad_ids[1]
        model.generation_config.eos_token_id = eos_ids
        model.to(ctx.device)
        out = Path(trainer.args.output_dir) if trainer is not None else None
        if out is not None and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the Trainer makes output_dir even when it saves nothing
    return trainer, timings


# ---------------------------------------------------------------------------------------------
# online trainers (GRPO, RLOO): the proxy RM as the reward function, the budget as max_steps
# ---------------------------------------------------------------------------------------------


def prompt_dataset(ctx: TrainContext, prompts_per_round: int) -> Dataset:
    """The train prompts as plain strings, already rendered by the benchmark (with the policy's
    chat template when it has one); TRL's sampler shuffles them with ``seed = ctx.seed``."""
    if len(ctx.train_prompts) < prompts_per_round:
        raise UsageError(f"{prompts_per_round} prompts per round but the benchmark has {len(ctx.train_prompts)} train prompts")
    from datasets import Dataset

    return Dataset.from_dict({"prompt": list(ctx.train_prompts)})


def online_arguments(ctx: TrainContext, c, rounds: int) -> dict:
    """TRL settings GRPO and RLOO share: the schedule that spends ``rounds × batch_size`` episodes,
    and the benchmark's sampler."""
    return trainer_arguments(
        ctx,
        learning_rate=c.lr,
        lr_scheduler_type="linear",
        max_grad_norm=c.max_grad_norm,
        per_device_train_batch_size=c.batch_size // c.num_mini_batches // parallel.state().world_size,
        gradient_accumulation_steps=1,
        steps_per_generation=c.num_mini_batches,  # one round = batch_size completions, split into mini-batches
        num_generations=c.num_generations,
        num_iterations=c.num_iterations,
        max_steps=rounds * c.num_mini_batches * c.num_iterations,  # TRL samples once every num_mini_batches × μ steps
        max_completion_length=ctx.generation.max_new_tokens,
        temperature=ctx.generation.temperature,
        top_k=0,  # pure temperature sampling, as the benchmark's sampler
        top_p=1.0,
        min_p=None,
        repetition_penalty=1.0,
        beta=c.beta,
        epsilon=c.epsilon,
        disable_dropout=True,  # the harness trains in eval mode ([B]/[N] 8); TRL's default keeps dropout
        shuffle_dataset=True,
        remove_unused_columns=False,
        log_completions=False,
        mask_truncated_completions=False,  # a cut-off response is scored as such, as everywhere in the harness
    )


def check_online_config(c) -> None:
    """The checks ``grpo``'s and ``rloo``'s configs share (their fields have the same names)."""
    if c.num_generations < 2:
        raise ValueError(f"--num-generations must be >= 2, got {c.num_generations}")
    if c.batch_size < 1 or c.batch_size % c.num_generations:
        raise ValueError(f"--batch-size ({c.batch_size}) must be a positive multiple of --num-generations ({c.num_generations})")
    if c.num_mini_batches < 1 or c.batch_size % c.num_mini_batches:
        raise ValueError(f"--num-mini-batches ({c.num_mini_batches}) must divide --batch-size ({c.batch_size})")
    if c.num_iterations < 1:
        raise ValueError(f"--num-iterations must be >= 1, got {c.num_iterations}")
    if not c.lr > 0 or not c.epsilon > 0 or not c.max_grad_norm > 0:
        raise ValueError("--lr, --epsilon and --max-grad-norm must be > 0")
    if c.beta < 0:
        raise ValueError(f"--beta must be >= 0, got {c.beta}")


def check_online_data_parallel(c, n: int) -> None:
    """``--num-processes n``: each of a round's mini-batches splits evenly over the processes (TRL
    gives every rank ``batch_size / num_mini_batches / n`` completions per step)."""
    if c.batch_size % (c.num_mini_batches * n):
        raise UsageError(f"--num-processes {n}: --batch-size {c.batch_size} must be a multiple of {n} × --num-mini-batches ({c.num_mini_batches})")


def train_online(ctx: TrainContext, c, name: str, trainer_class, config_class, **extra) -> Policy:
    """Train with TRL's GRPO or RLOO trainer within ``ctx.budget``; ``ctx.model`` in place."""
    rounds = planned_rounds(ctx.budget.remaining, c.batch_size, "--batch-size")
    expected = ctx.budget.episodes_used + rounds * c.batch_size
    dataset = prompt_dataset(ctx, c.batch_size // c.num_generations)
    reward = ProxyReward(ctx)
    args = config_class(**online_arguments(ctx, c, rounds), **extra)

    def make_trainer():
        return trainer_class(model=ctx.model, reward_funcs=reward, args=args, train_dataset=dataset,
                             processing_class=trl_tokenizer(ctx.tokenizer))  # fmt: skip

    _, timings = run_trainer(ctx, make_trainer, name)
    if ctx.budget.episodes_used != expected:  # TRL sampled more or less than max_steps planned
        raise RuntimeError(f"{name}: TRL sampled {ctx.budget.episodes_used} episodes, planned {expected}")
    episodes = rounds * c.batch_size
    ctx.log(rounds * c.num_mini_batches * c.num_iterations, {
        "time/trl_setup_s": timings["setup_s"],  # building TRL's trainer (reference model, accelerator...)
        "time/trl_train_s": timings["train_s"],
        "time/episodes_per_second": episodes / timings["train_s"],
    })  # fmt: skip
    return Policy(ctx.model, ctx.tokenizer)


#: TRL's log keys → the harness's curve names, per plugin (every other key goes under ``<name>/``)
_COMMON = {"learning_rate": "optim/lr", "grad_norm": "optim/grad_norm", "step_time": "time/step_s",
           "train_runtime": None}  # the same as time/trl_train_s, logged at the end  # fmt: skip
_ONLINE = {
    **_COMMON,
    "loss": "loss/policy",
    "reward": "objective/scores",  # the mean proxy score of the round's completions (KL not included)
    "reward_std": "objective/scores_std",
    "kl": "objective/kl_per_token",  # mean over completion tokens (GRPO: k3 estimate; RLOO: k1)
    "entropy": "objective/entropy",
    "completions/mean_length": "val/response_length",
    "completions/clipped_ratio": "val/clipped_ratio",  # share cut off at max_new_tokens (no EOS)
    "rewards/proxy/mean": None,  # the same as reward with one reward function
    "rewards/proxy/std": None,
    "train_loss": None,
}
LOG_NAMES: dict[str, dict[str, str | None]] = {
    "grpo": _ONLINE,
    "rloo": _ONLINE,
    "dpo": {
        **_COMMON,
        "loss": "loss/dpo",
        "rewards/margins": "objective/rewards_margins",  # β·(log-ratio chosen − log-ratio rejected), mean
        "rewards/accuracies": "objective/rewards_accuracies",
        "train_loss": None,
    },
}
