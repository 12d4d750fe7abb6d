"""Tiny language models for the embedded benchmarks: a word-level tokenizer trained with
`tokenizers`, GPT-2-family models from `transformers`, and one small training loop for
pretraining, SFT and judge LMs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from harness.progress import bar

EOS, UNK, PAD = "<eos>", "<unk>", "<pad>"


def train_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer for whitespace-separated text. EOS is id 0; PAD is the last id
    and lies outside the models' vocabulary (``model_vocab_size``), so it is never sampled."""
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=[EOS, UNK], min_frequency=1, show_progress=False))
    tok.add_special_tokens([PAD])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, unk_token=UNK, pad_token=PAD, padding_side="left")
    assert fast.eos_token_id == 0 and fast.pad_token_id == len(fast) - 1
    return fast


def load_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(str(folder), padding_side="left")


def model_vocab_size(tokenizer) -> int:
    return len(tokenizer) - 1  # everything but PAD


@dataclass
class LMShape:
    """A GPT-2 size."""

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 2
    n_positions: int = 64


def gpt2_config(tokenizer, shape: LMShape, **extra) -> GPT2Config:
    return GPT2Config(
        vocab_size=model_vocab_size(tokenizer),
        n_positions=shape.n_positions,
        n_embd=shape.n_embd,
        n_layer=shape.n_layer,
        n_head=shape.n_head,
        # dropout off everywhere: RL needs the sampling policy and the trained one to agree ([B]/[N] 8)
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        # the same tanh-approximate GELU as GPT-2's "gelu_new", as one fused kernel
        activation_function="gelu_pytorch_tanh",
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        **extra,
    )


def new_lm(tokenizer, shape: LMShape, seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config(tokenizer, shape))


def lm_to_classifier(lm, seed: int):
    """A sequence classifier (num_labels=1, ``AutoModelForSequenceClassification``) of ``lm``'s
    architecture whose backbone (``base_model``) has ``lm``'s weights; its score head is
    initialised N(0, 1/√(d+1)) ([B] 3), d the hidden size. It reads the row at an explicit
    index (``classifier_scores``), never ``pad_token_id``. For a GPT-2 this is the same model,
    draw for draw from ``seed``, as the ``GPT2ForSequenceClassification`` built before (cached
    reward models rely on it)."""
    base = {k: v for k, v in lm.config.to_dict().items() if k not in ("id2label", "label2id", "architectures")}
    config = type(lm.config).from_dict({**base, "num_labels": 1})
    config.pad_token_id = None  # rows are scored at an explicit index, see reward_models
    torch.manual_seed(seed)
    clf = AutoModelForSequenceClassification.from_config(config)
    clf.base_model.load_state_dict(lm.base_model.state_dict())
    torch.nn.init.normal_(clf.score.weight, std=1 / math.sqrt(config.hidden_size + 1))
    return clf


@dataclass
class TrainSettings:
    epochs: float = 1.0
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    warmup_frac: float = 0.05


def train_causal_lm(
    model,
    examples: list[tuple[list[int], list[int]]],
    settings: TrainSettings,
    seed: int,
    desc: str,
    quiet: bool = False,
) -> list[float]:
    """Next-token prediction on (context, target) id lists: the loss covers ``target`` tokens
    only (pretraining passes an empty context; SFT passes the prompt). A plain loop rather than
    TRL's SFTTrainer: at this size Trainer's set-up costs more than the training itself, and the
    loop is three lines of math. Returns the loss per step."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = max(1, int(round(steps_per_epoch * settings.epochs)))
    optim = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, int(total * settings.warmup_frac))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    eos = model.config.eos_token_id  # a list for some pretrained models (Llama 3), None for others
    fill = eos[0] if isinstance(eos, (list, tuple)) else (0 if eos is None else eos)  # any id: padding is masked, unlabelled
    losses = []
    model.train()
    order: list[int] = []
    with bar(total, desc, disable=quiet, unit="step") as progress:
        for _ in range(total):
            if len(order) < settings.batch_size:
                more = list(range(len(examples)))
                rng.shuffle(more)
                order += more
            batch = [examples[i] for i in order[: settings.batch_size]]
            del order[: settings.batch_size]
            width = max(len(c) + len(t) for c, t in batch)
            ids = torch.full((len(batch), width), fill, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (context, target) in enumerate(batch):
                row = context + target
                ids[i, : len(row)] = torch.tensor(row)
                labels[i, len(context) : len(row)] = torch.tensor(target)
                mask[i, : len(row)] = 1
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
            optim.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            losses.append(out.loss.item())
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses


@torch.no_grad()
def mean_token_log_likelihood(model, tokenizer, texts: list[str], batch_size: int = 512) -> torch.Tensor:
    """Mean per-token log-likelihood of each text followed by EOS (the first token is
    predicted from EOS as a start symbol). Used by judge LMs for fluency."""
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    # A text longer than the context is scored on its first n_positions tokens (a small
    # --benchmark-set max_positions must not index past the position table).
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    rows = [([eos] + tokenizer(t, add_special_tokens=False)["input_ids"] + [eos])[:limit] for t in texts]
    out = torch.empty(len(rows))
    model.eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), eos, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        for i, r in enumerate(chunk):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = True
        logits = model(input_ids=ids.to(device), attention_mask=mask.long().to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        tmask = mask[:, 1:].to(device)
        out[start : start + len(chunk)] = ((logp * tmask).sum(1) / tmask.sum(1)).cpu()
    return out
