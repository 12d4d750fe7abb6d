"""Shared pieces of learned reward models: scoring a rollout with a sequence classifier at the
last real token, turning preference items into rollouts, and held-out quality figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from scipy.stats import spearmanr
from transformers import GPT2ForSequenceClassification

from harness.api import FittedRewardModel, Rollout
from harness.generation import rollout_from_texts, sequence_inputs


def classifier_scores(model, rollout: Rollout) -> torch.Tensor:
    """The classifier's scalar at the last real token of query + response ([B] 1, [N] 11):
    queries are left-padded and responses right-padded, so that token sits at column
    ``Tq + length − 1``. Differentiable (used for fitting); ``[B]``."""
    input_ids, attention, positions = sequence_inputs(rollout)
    hidden = model.transformer(input_ids=input_ids, attention_mask=attention, position_ids=positions).last_hidden_state
    last = rollout.query_ids.size(1) + rollout.lengths - 1
    picked = hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    return model.score(picked).squeeze(-1).float()


class ClassifierReward(FittedRewardModel):
    """A fitted sequence-classifier RM with an output normalisation r = gain · score + bias,
    set so that π_sft's samples score mean 0 and std 1 ([B] 2, [N]): a KL coefficient then
    means the same on every benchmark."""

    def __init__(self, model: GPT2ForSequenceClassification, gain: float = 1.0, bias: float = 0.0, metrics=None):
        self.model = model.eval()
        self.gain, self.bias = gain, bias
        self.metrics = dict(metrics or {})

    @torch.no_grad()
    def raw_scores(self, rollout: Rollout, batch_size: int = 512) -> torch.Tensor:
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
        (folder / "reward.json").write_text(json.dumps({"gain": self.gain, "bias": self.bias, "metrics": self.metrics}))

    @classmethod
    def load(cls, folder: Path, device) -> ClassifierReward:
        model = GPT2ForSequenceClassification.from_pretrained(str(folder / "model")).to(device)
        info = json.loads((folder / "reward.json").read_text())
        return cls(model, info["gain"], info["bias"], info["metrics"])


def items_rollout(tokenizer, items: list[dict], device) -> tuple[Rollout, list[int]]:
    """All responses of preference ``items`` as one rollout, with each item's start row."""
    prompts, responses, ended, starts = [], [], [], []
    for item in items:
        starts.append(len(prompts))
        prompts += [item["prompt"]] * len(item["responses"])
        responses += item["responses"]
        ended += item["ended"]
    # EOS only where the sampled response had one: a cut-off response is scored as cut off.
    rollout = rollout_from_texts(tokenizer, prompts, responses, ended=ended, device=device)
    return rollout, starts


def held_out_metrics(fitted: FittedRewardModel, tokenizer, items: list[dict], device) -> dict[str, float]:
    """Pairwise accuracy against the annotator's labels and against gold, and Spearman's rank
    correlation of the RM with gold, on held-out (eval-prompt) preference items.

    A pair of identical responses carries no preference, so it is left out of ``rm/accuracy``;
    a pair with equal gold is left out of ``rm/gold_accuracy``. An RM tie counts half."""
    if not items:
        return {}
    rollout, starts = items_rollout(tokenizer, items, device)
    scores = fitted.score(rollout).cpu()
    label_hits = label_pairs = gold_hits = gold_pairs = 0.0
    for item, start in zip(items, starts):
        s = scores[start : start + len(item["responses"])]
        order, gold = item["ranking"], item["gold"]
        seen = list(zip(item["responses"], item["ended"]))
        for a in range(len(order)):
            for b in range(a + 1, len(order)):
                hi, lo = order[a], order[b]
                agree = 1.0 if s[hi] > s[lo] else 0.5 if s[hi] == s[lo] else 0.0
                if seen[hi] != seen[lo]:
                    label_pairs, label_hits = label_pairs + 1, label_hits + agree
                if gold[hi] != gold[lo]:
                    gold_pairs += 1
                    gold_hits += agree if gold[hi] > gold[lo] else 1.0 - agree
    gold_all = [g for item in items for g in item["gold"]]
    return {
        "rm/accuracy": label_hits / label_pairs if label_pairs else float("nan"),
        "rm/gold_accuracy": gold_hits / gold_pairs if gold_pairs else float("nan"),
        "rm/spearman": float(spearmanr(scores.numpy(), gold_all).statistic),
    }


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


def annotation_cost(k: int) -> float:
    """Annotation cost of one K-ranking in pair-equivalents: log2(K!) — the bits in a full
    ranking, i.e. the binary comparisons an optimal sort needs on average. A pair costs 1; a
    4-ranking costs 4.58, not C(4,2) = 6 (its pairs are not independent labels)."""
    return math.log2(math.factorial(k))


def fit_on_rankings(
    model,
    tokenizer,
    items: list[dict],
    *,
    epochs: float,
    lr: float,
    batch_size: int,
    seed: int,
    device,
    loss_fn=all_pairs_loss,
    quiet: bool = False,
) -> list[float]:
    """Train sequence classifier ``model`` on annotated items (same K each) with ``loss_fn``."""
    from harness.progress import bar

    k = len(items[0]["responses"])
    rollout, _ = items_rollout(tokenizer, items, device)
    rankings = torch.tensor([item["ranking"] for item in items], device=device)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(items) // batch_size)
    total = max(1, round(steps_per_epoch * epochs))
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LinearLR(optim, 1.0, 0.0, total_iters=total)
    model.train()
    losses: list[float] = []
    order = torch.empty(0, dtype=torch.long)
    with bar(total, f"fit reward model ({'pairs' if k == 2 else f'{k}-rankings'})", disable=quiet, unit="step") as progress:
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
