"""Reward heads: scoring a rollout with a sequence classifier at the last real token, turning
preference items into rollouts, the K-wise ranking losses and a fitting loop."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import PreTrainedModel

from harness.api import FittedRewardModel, PreferenceData, PreferenceItem
from harness.api.budget import count_scores
from harness.lm.pretrained import load_pretrained_tokenizer, load_sequence_classifier
from harness.lm.sampling import rollout_from_texts, sequence_inputs
from harness.rollout import Rollout


def classifier_scores(model, rollout: Rollout) -> torch.Tensor:
    """The classifier's scalar at the last real token of query + response ([B] 1, [N] 11):
    queries are left-padded and responses right-padded, so that token sits at column
    ``Tq + length − 1``. Differentiable (used for fitting); ``[B]``. Any transformers sequence
    classifier: its backbone (``base_model``) with explicit position ids, then its ``score``."""
    count_scores(model, rollout.query_ids.size(0))  # the proxy's network in a metered run: RM queries (harness.api.budget)
    input_ids, attention, positions = sequence_inputs(rollout)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention, position_ids=positions).last_hidden_state
    last = rollout.query_ids.size(1) + rollout.lengths - 1
    picked = hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    return model.score(picked).squeeze(-1).float()


class ClassifierReward(FittedRewardModel):
    """A fitted sequence-classifier RM with an output normalisation r = gain · score + bias,
    set so that π_sft's samples score mean 0 and std 1 ([B] 2, [N]): a KL coefficient then
    means the same on every benchmark."""

    def __init__(self, model: PreTrainedModel, gain: float = 1.0, bias: float = 0.0, metrics=None, tokenizer=None):
        self.model = model.eval()
        self.gain, self.bias = gain, bias
        self.metrics = dict(metrics or {})
        #: the RM's own tokenizer when it is not the policy's (``reward_model_base``): rollouts
        #: are then re-tokenized from their texts before scoring; ``None``: score the ids as they are
        self.tokenizer = tokenizer

    def _own_tokens(self, rollout: Rollout) -> Rollout:
        if self.tokenizer is None or rollout.tokenizer is self.tokenizer:
            return rollout
        device = next(self.model.parameters()).device
        return rollout_from_texts(self.tokenizer, rollout.prompts, rollout.responses, ended=rollout.ended.tolist(), device=device)

    @torch.no_grad()
    def raw_scores(self, rollout: Rollout, batch_size: int = 512) -> torch.Tensor:
        rollout = self._own_tokens(rollout)
        parts = [classifier_scores(self.model, rollout.select(list(range(s, min(s + batch_size, len(rollout))))))
                 for s in range(0, len(rollout), batch_size)]
        return torch.cat(parts)

    def score(self, rollout: Rollout) -> torch.Tensor:
        return self.gain * self.raw_scores(rollout) + self.bias

    def normalise_on(self, rollout: Rollout) -> None:
        raw = self.raw_scores(rollout)
        std = raw.std().clamp_min(1e-6).item()
        self.gain, self.bias = 1.0 / std, -raw.mean().item() / std

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder / "model"))
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(folder / "tokenizer"))
        (folder / "reward.json").write_text(json.dumps({"gain": self.gain, "bias": self.bias, "metrics": self.metrics}))

    @classmethod
    def load(cls, folder: Path, device) -> ClassifierReward:
        model = load_sequence_classifier(folder / "model", device)  # safetensors only, any architecture
        info = json.loads((folder / "reward.json").read_text())
        tokenizer = load_pretrained_tokenizer(folder / "tokenizer") if (folder / "tokenizer").exists() else None
        return cls(model, info["gain"], info["bias"], info["metrics"], tokenizer=tokenizer)


def items_rollout(tokenizer, items: list[PreferenceItem], device) -> tuple[Rollout, list[int]]:
    """All responses of preference ``items`` as one rollout, with each item's start row."""
    prompts, responses, ended, starts = [], [], [], []
    for item in items:
        starts.append(len(prompts))
        prompts += [item.prompt] * len(item.responses)
        responses += item.responses
        ended += item.ended
    # EOS only where the sampled response had one: a cut-off response is scored as cut off.
    rollout = rollout_from_texts(tokenizer, prompts, responses, ended=ended, device=device)
    return rollout, starts


def best_of_groups(scores: torch.Tensor) -> torch.Tensor:
    """The row of the best-scored response of each group: ``scores`` ``[G, K]`` (group g at rows
    g·K … g·K + K − 1) → ``[G]`` row indices, on the scores' device."""
    return scores.argmax(1) + torch.arange(scores.size(0), device=scores.device) * scores.size(1)


def all_pairs_loss(scores: torch.Tensor, rankings: torch.Tensor) -> torch.Tensor:
    """InstructGPT's K-wise loss: for each item, the mean over its C(K,2) ordered pairs of
    −log σ(r_better − r_worse), then the mean over items (one item is one batch element, so a
    prompt with many pairs is not over-weighted). With K = 2 it is the Bradley–Terry loss.

    :param scores: ``[N, K]`` RM scores of each item's responses.
    :param rankings: ``[N, K]`` response indices, best → worst.
    """
    ordered = scores.gather(1, rankings)  # ordered[:, 0] is the best
    k = ordered.size(1)
    better, worse = torch.triu_indices(k, k, offset=1, device=scores.device)
    return -torch.nn.functional.logsigmoid(ordered[:, better] - ordered[:, worse]).mean()


def plackett_luce_loss(scores: torch.Tensor, rankings: torch.Tensor) -> torch.Tensor:
    """Listwise Plackett–Luce negative log-likelihood of each observed ranking, divided by its
    K − 1 choices, averaged over items: −Σ_i [r_(i) − log Σ_{j ≥ i} exp r_(j)] / (K − 1).
    With K = 2 it is the Bradley–Terry loss too."""
    ordered = scores.gather(1, rankings)
    # log-sum-exp over each suffix ordered[:, i:], computed from the end
    suffix = torch.logcumsumexp(ordered.flip(1), dim=1).flip(1)
    return -(ordered - suffix)[:, :-1].mean()


def fit_on_rankings(
    model,
    preferences: PreferenceData,
    *,
    epochs: float,
    lr: float,
    batch_size: int,
    seed: int,
    device,
    loss_fn=all_pairs_loss,
    quiet: bool = False,
) -> list[float]:
    """Train sequence classifier ``model`` on annotated items (K responses each) with ``loss_fn``."""
    from harness.progress import bar

    k, items = preferences.k, preferences.items
    rollout, rankings = preferences.rollout(device)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(items) // batch_size)
    total = max(1, round(steps_per_epoch * epochs))
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LinearLR(optim, 1.0, 0.0, total_iters=total)
    model.train()
    losses: list[float] = []
    order = torch.empty(0, dtype=torch.long)
    with bar(total, f"fit reward model ({preferences.kind})", disable=quiet, unit="step") as progress:
        for _ in range(total):
            if len(order) < batch_size:
                order = torch.cat([order, torch.randperm(len(items), generator=generator)])
            batch, order = order[:batch_size], order[batch_size:]
            rows = (batch.unsqueeze(1) * k + torch.arange(k)).flatten()
            scores = classifier_scores(model, rollout.select(rows)).view(len(batch), k)
            loss = loss_fn(scores, rankings[batch.to(device)])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            losses.append(loss.item())
            progress.update(1)
    model.eval()
    return losses
