"""Sampling responses and recomputing their log-probs: the one place that defines how a
policy's tokens are drawn, so that rollouts, preference data and evaluation agree.

Conventions (PPO implementation details [N] 10, 11, 14 and [B] 4, 5):
- queries are left-padded, so every response starts at the same column;
- PAD lies outside the model vocabulary: it can never be sampled, and before any forward pass
  it is replaced by EOS (those positions are masked anyway);
- pure temperature sampling (no top-k, no top-p) and log-probs recomputed with logits / T;
- a response ends at its first EOS (kept); every later position is PAD.
"""

from __future__ import annotations

import inspect

import torch
from transformers import GPT2LMHeadModel

from harness.api.budget import charge_samples
from harness.rollout import GenerationSettings, Rollout


def encode_prompts(tokenizer, prompts: list[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded query ids and their mask."""
    encoded = tokenizer(prompts, padding=True, return_tensors="pt", padding_side="left", add_special_tokens=False)
    return encoded["input_ids"].to(device), encoded["attention_mask"].to(device).bool()


# transformers 5.2x renamed the KV-cache argument ``past_key_values`` to ``cache``.
_CACHE_ARG = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


def _cache_of(out):
    return out.cache if _CACHE_ARG == "cache" else out.past_key_values


def _model_inputs(ids: torch.Tensor, mask: torch.Tensor, pad_id: int, fill_id: int):
    """Ids with PAD replaced (never embedded), the attention mask and position ids that
    start at 0 on each row's first real token (left padding would shift them otherwise)."""
    position_ids = (mask.long().cumsum(1) - 1).clamp(min=0)
    return ids.masked_fill(ids == pad_id, fill_id), mask.long(), position_ids


@torch.no_grad()
def sample_responses(
    model,
    query_ids: torch.Tensor,
    query_mask: torch.Tensor,
    settings: GenerationSettings,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample up to ``settings.max_new_tokens`` tokens per row with a KV cache.

    Returns right-padded response ids ``[B, T]`` (T ≤ max_new_tokens: sampling stops early
    once every row has emitted EOS).
    """
    charge_samples(query_ids.size(0), "harness.lm's sampler")  # a metered run's budget (harness.api.budget)
    batch = query_ids.size(0)
    input_ids, attention, positions = _model_inputs(query_ids, query_mask, pad_id, eos_id)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
    past, logits = _cache_of(out), out.logits[:, -1]
    next_position = positions[:, -1] + 1
    done = torch.zeros(batch, dtype=torch.bool, device=query_ids.device)
    tokens = []
    ones = torch.ones(batch, 1, dtype=attention.dtype, device=attention.device)
    for step in range(settings.max_new_tokens):
        probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = token.masked_fill(done, pad_id)
        tokens.append(token)
        done |= token == eos_id
        if bool(done.all()) or step == settings.max_new_tokens - 1:
            break
        attention = torch.cat([attention, ones], dim=1)
        out = model(
            input_ids=token.masked_fill(done, eos_id).unsqueeze(1),
            attention_mask=attention,
            position_ids=next_position.unsqueeze(1),
            use_cache=True,
            **{_CACHE_ARG: past},
        )
        past, logits = _cache_of(out), out.logits[:, -1]
        next_position = next_position + 1
    return torch.stack(tokens, dim=1)


def rollout_from_texts(tokenizer, prompts: list[str], responses: list[str], ended: bool | list[bool] = True, device="cpu") -> Rollout:
    """A rollout from given texts; a response gets an EOS where ``ended`` (one flag, or one per row)."""
    query_ids, query_mask = encode_prompts(tokenizer, prompts, device)
    flags = [ended] * len(responses) if isinstance(ended, bool) else list(ended)
    rows = [tokenizer(r, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if e else []) for r, e in zip(responses, flags)]
    width = max(1, max(len(r) for r in rows))
    response_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        response_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return Rollout(list(prompts), query_ids, query_mask, response_ids.to(device), tokenizer)


def sequence_inputs(rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Model inputs for query + response: (input_ids, attention_mask, position_ids)."""
    ids = torch.cat([rollout.query_ids, rollout.response_ids], dim=1)
    mask = torch.cat([rollout.query_mask, rollout.response_mask], dim=1)
    return _model_inputs(ids, mask, rollout.pad_id, rollout.eos_id)


def response_logits(model, rollout: Rollout, temperature: float) -> torch.Tensor:
    """Logits / T predicting each response token: ``[B, Tr, V]``."""
    input_ids, attention, positions = sequence_inputs(rollout)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits
    start = rollout.query_ids.size(1) - 1
    return logits[:, start : start + rollout.response_ids.size(1)].float() / temperature


def token_log_probs(logits: torch.Tensor, rollout: Rollout) -> torch.Tensor:
    """log-softmax of ``logits`` at the sampled tokens; 0 at padding (never in a sum)."""
    targets = rollout.response_ids.masked_fill(~rollout.response_mask, rollout.eos_id)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(~rollout.response_mask, 0.0)


@torch.no_grad()
def response_log_probs(model, rollout: Rollout, temperature: float, batch_size: int = 512) -> torch.Tensor:
    """Per-token log π(y_t | x, y_<t) at ``temperature``, 0 at padding: ``[B, Tr]``."""
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, len(rollout), batch_size):
        part = rollout.select(list(range(start, min(start + batch_size, len(rollout)))))
        parts.append(token_log_probs(response_logits(model, part, temperature), part))
    model.train(was_training)
    return torch.cat(parts)
