"""Shared fixtures: the real pipeline at small sizes, built once per session (and cached
across sessions under $HARNESS_CACHE_DIR when it is set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from harness_benchmarks.sentiment import Sentiment, SentimentConfig

from harness.api import Budget, RewardFitContext, TrainContext
from harness.cache import StageCache
from harness.pipeline import prepare

# Tiny models: one thread is as fast as two, and far faster when another process holds a core.
torch.set_num_threads(1)

#: the sentiment benchmark at test size (the same code as the default, smaller numbers)
TINY_SENTIMENT = [
    "corpus_size=4000",
    "sft_size=1500",
    "judge_layers=1",
    "judge_width=64",
    "preference_prompts=800",
    "preference_eval_prompts=100",
    "eval_samples_per_prompt=2",
    "default_budget=256",
]


def tiny_sentiment_config() -> SentimentConfig:
    values = dict(item.split("=") for item in TINY_SENTIMENT)
    return SentimentConfig(**{k: type(getattr(SentimentConfig(), k))(v) for k, v in values.items()})


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR")
    path = Path(root) if root else tmp_path_factory.mktemp("harness-cache")
    os.environ["HARNESS_CACHE_DIR"] = str(path)  # CLI runs in the tests share it
    return path


@pytest.fixture(scope="session")
def tiny_artifacts(cache_dir):
    return prepare(Sentiment(tiny_sentiment_config()), StageCache(cache_dir), quiet=True)


@pytest.fixture(scope="session")
def tiny_proxy(tiny_artifacts, cache_dir):
    from harness_plugins.reward_models import Pairwise, PairwiseConfig

    ctx = RewardFitContext(tiny_artifacts, torch.device("cpu"), cache_dir, seed=0)
    return Pairwise(PairwiseConfig(epochs=2)).fit(ctx)


def make_train_context(artifacts, reward_model, *, budget: int = 256, seed: int = 0, run_dir: Path | None = None, log=None) -> TrainContext:
    """A TrainContext as the runner builds it (fresh π_sft copy, frozen π_ref)."""
    ref = artifacts.load_sft()
    for p in ref.parameters():
        p.requires_grad_(False)
    logged: list[tuple[int, dict]] = []
    return TrainContext(
        policy=artifacts.load_sft(),
        ref_policy=ref,
        tokenizer=artifacts.tokenizer,
        reward_model=reward_model,
        train_prompts=artifacts.train_prompts,
        generation=artifacts.generation,
        budget=Budget(budget),
        seed=seed,
        device=torch.device("cpu"),
        run_dir=run_dir or Path("."),
        log=log or (lambda step, metrics: logged.append((step, metrics))),
        quiet=True,
    )
