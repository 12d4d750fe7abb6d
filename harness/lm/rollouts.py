"""Sampling one response per prompt from any causal LM, in chunks, with a progress bar: the
fast GPT-2 sampler where it applies (:mod:`harness.lm.fast_gpt2`), transformers' reference loop
(:mod:`harness.lm.sampling`) elsewhere. It sits above both, so neither imports the other's
caller. May import: harness.lm.sampling, harness.lm.fast_gpt2 and the ground floor."""

from __future__ import annotations

import torch

from harness.lm import fast_gpt2, sampling  # as modules: tests count the draws by patching their functions
from harness.progress import bar
from harness.rollout import GenerationSettings, Rollout


def sample_rollout(
    model,
    tokenizer,
    prompts: list[str],
    settings: GenerationSettings,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
    desc: str | None = None,
    fast: bool = True,
) -> Rollout:
    """Sample one response per prompt (repeat a prompt in ``prompts`` for several), in chunks of
    ``batch_size``; with ``desc``, a progress bar over the prompts.

    A plain GPT-2 goes through :func:`harness.lm.fast_gpt2.gpt2_sample`: the same conventions
    and the same draws from ``generator``, without transformers' per-token overhead
    (tests/test_fast_sampling.py checks both). ``fast=False`` forces :func:`sample_responses`
    for any model: the pipeline's cached stages sample so, and their artifacts keep their bytes."""
    device = next(model.parameters()).device
    query_ids, query_mask = sampling.encode_prompts(tokenizer, prompts, device)
    was_training = model.training
    model.eval()
    sampler = fast_gpt2.gpt2_sample if fast and fast_gpt2.is_plain_gpt2(model) else sampling.sample_responses
    chunks = []
    progress = bar(len(prompts), desc or "", disable=desc is None, unit="sample")
    for start in range(0, len(prompts), batch_size):
        chunk = slice(start, start + batch_size)
        chunks.append(
            sampler(
                model,
                query_ids[chunk],
                query_mask[chunk],
                settings,
                tokenizer.eos_token_id,
                tokenizer.pad_token_id,
                generator,
            )
        )
        progress.update(min(batch_size, len(prompts) - start))
    progress.close()
    model.train(was_training)
    width = max(c.size(1) for c in chunks)
    responses = torch.cat(
        [torch.nn.functional.pad(c, (0, width - c.size(1)), value=tokenizer.pad_token_id) for c in chunks]
    )
    return Rollout(prompts=list(prompts), query_ids=query_ids, query_mask=query_mask, response_ids=responses, tokenizer=tokenizer)
