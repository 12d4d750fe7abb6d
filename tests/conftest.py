"""Shared fixtures: the real pipeline at small sizes, built once per session (and cached
across sessions under $HARNESS_CACHE_DIR when it is set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from harness_benchmarks.sentiment import Sentiment, SentimentConfig

from harness.api import Budget, TrainContext
from harness.pipeline.cache import StageCache
from harness.pipeline.stages import prepare

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
    "default_budget=256",
]
#: the benchmark settings and a small evaluation, as `harness run` flags
TINY_FLAGS = [f"--benchmark-set={b}" for b in TINY_SENTIMENT] + ["--eval-samples-per-prompt", "2"]


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
def tiny_prepared(cache_dir):
    return prepare(Sentiment(tiny_sentiment_config()), StageCache(cache_dir), quiet=True)


@pytest.fixture(scope="session")
def tiny_proxy(tiny_prepared):
    from harness_plugins.reward_models import Pairwise, PairwiseConfig

    from harness.running.reward_fit import fit_proxy

    return fit_proxy(Pairwise(PairwiseConfig(epochs=2)), tiny_prepared, torch.device("cpu")).fitted


def make_train_context(prepared, reward_model, *, budget: int = 256, seed: int = 0, run_dir: Path | None = None, log=None) -> TrainContext:
    """A TrainContext as the runner builds it (fresh π_sft copy, frozen π_ref)."""
    ref = prepared.load_sft().requires_grad_(False)
    logged: list[tuple[int, dict]] = []
    return TrainContext(
        model=prepared.load_sft(),
        ref_model=ref,
        tokenizer=prepared.tokenizer,
        reward_model=reward_model,
        train_prompts=prepared.train_prompts,
        generation=prepared.generation,
        budget=Budget(budget),
        seed=seed,
        device=torch.device("cpu"),
        run_dir=run_dir or Path("."),
        log=log or (lambda step, metrics: logged.append((step, metrics))),
        quiet=True,
    )


def make_spec(
    *,
    benchmark: str = "sentiment",
    version: str = "1",
    bench_config: dict | None = None,
    algorithm: str = "ppo",
    algo_config: dict | None = None,
    reward_model: str = "pairwise",
    rm_config: dict | None = None,
    oracle: bool = False,
    budget: int = 64,
    evaluation: dict | None = None,
    code: str = "c0ffee",
    seed: int = 0,
):
    """A run spec without plugins (store and leaderboard tests)."""
    from harness.specs import Component, RunSpec

    return RunSpec(
        benchmark=Component(benchmark, bench_config if bench_config is not None else {"n_prompts": 8}, version=version),
        algorithm=Component(algorithm, algo_config if algo_config is not None else {"kl_coef": 0.05, "lr": 1e-5}),
        reward_model=Component(reward_model, rm_config if rm_config is not None else {"epochs": 1}, oracle=oracle),
        budget=budget,
        evaluation=evaluation if evaluation is not None else {"samples_per_prompt": 8, "max_prompts": 0},
        code={"harness": code},
        seed=seed,
    )


def proxy_gain(model, ref_model, prepared, proxy, n: int = 512, seed: int = 99) -> tuple[float, float, str]:
    """How much ``model`` raised the mean proxy score over ``ref_model`` on ``n`` held-out
    samples (the same prompts and sampler seed for both): (gap, its standard error, a message)."""
    import math

    from harness.lm import sample_rollout

    repeats = -(-n // len(prepared.eval_prompts))
    prompts = [p for p in prepared.eval_prompts for _ in range(repeats)][:n]

    def scores(m):
        return proxy.score(sample_rollout(m, prepared.tokenizer, prompts, prepared.generation, torch.Generator().manual_seed(seed)))

    after, before = scores(model), scores(ref_model)
    gap = (after.mean() - before.mean()).item()
    stderr = math.sqrt(after.var() / n + before.var() / n)
    return gap, stderr, f"proxy {before.mean():.3f} → {after.mean():.3f} (SE of the gap {stderr:.3f})"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one thread is fastest, and immune to a busy second core (a module asks for it
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed): a disk that fills up."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or done.returncode}); the simulated ENOSPC test covers it")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)
