"""Run one configuration over one or more seeds: build (or load) the benchmark, fit (or load)
the proxy reward model, train, evaluate on held-out prompts, store everything."""

from __future__ import annotations

import json
import math
import random
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.api import (
    Budget,
    EvalBatch,
    FittedRewardModel,
    Policy,
    RewardFitContext,
    RunInfo,
    TrainContext,
    config_dict,
)
from harness.cache import StageCache
from harness.config import config_hash
from harness.errors import NonFiniteError, UsageError
from harness.manifest import manifest
from harness.pipeline import BenchmarkArtifacts, prepare
from harness.plugins import PluginHost
from harness.store import Store

#: bump when fitting or the held-out RM metrics change (fits are deterministic: same weights)
REWARD_CODE_VERSION = 2
#: how many held-out generations each run keeps in the store
STORED_SAMPLES = 48
EVAL_SEED_OFFSET = 1_000_003


@dataclass
class RunRequest:
    algorithm: str
    benchmark: str = "sentiment"
    reward_model: str = "pairwise"
    algo_config: Any = None
    bench_config: Any = None
    rm_config: Any = None
    seeds: list[int] = field(default_factory=lambda: [0])
    budget: int | None = None
    device: str = "auto"
    store: Path = Path("results/store.sqlite")
    results_dir: Path = Path("results")
    cache: StageCache = field(default_factory=StageCache)
    quiet: bool = False


@dataclass
class RunResult:
    run_id: str
    name: str
    seed: int
    status: str
    metrics: dict[str, float]
    error: str | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use cpu or auto)")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device {name}: expected cpu, cuda or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_reward_model(host: PluginHost, name: str, config: Any, artifacts: BenchmarkArtifacts, device: torch.device) -> FittedRewardModel:
    """The proxy RM for a benchmark, cached under the benchmark's π_sft and RM data, and the
    RM's name and config: every algorithm on a benchmark optimizes the same r̂."""
    entry = host.reward_models.get(name)
    rm = entry.cls(config)
    ctx = RewardFitContext(artifacts=artifacts, device=device, cache_dir=artifacts.cache.root, seed=artifacts.config.seed)
    if entry.cls.preference_kind is None:
        return rm.fit(ctx)
    key = config_hash("reward_model", REWARD_CODE_VERSION, name, config, artifacts.keys, artifacts.config)
    holder: dict[str, FittedRewardModel] = {}

    def build(folder: Path) -> None:
        holder["fitted"] = rm.fit(ctx)
        rm.save(holder["fitted"], folder)

    folder = artifacts.cache.get_or_build("reward_model", key, build, {"name": name, "config": config_dict(config)})
    return holder.get("fitted") or rm.load(ctx, folder)


def _check_finite(step: int, metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        if key.startswith(("loss/", "objective/")) and not math.isfinite(float(value)):
            raise NonFiniteError(f"{key} is {value} at step {step}")


def evaluate(
    host: PluginHost, policy: Policy, ref: Policy, artifacts: BenchmarkArtifacts, proxy: FittedRewardModel, seed: int, quiet: bool = False
) -> tuple[dict[str, float], dict[str, bool | None], EvalBatch]:
    """Every registered evaluator on samples of π and π_sft for the held-out prompts, with
    the benchmark's fixed decoding settings and a seed derived from the run's."""
    prompts = [p for p in artifacts.eval_prompts for _ in range(artifacts.config.eval_samples_per_prompt)]
    settings = artifacts.generation
    rollout = policy.sample(prompts, settings, torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET), desc=None if quiet else "evaluate: sample π")
    ref_rollout = ref.sample(
        prompts, settings, torch.Generator().manual_seed(seed + 2 * EVAL_SEED_OFFSET), desc=None if quiet else "evaluate: sample π_sft"
    )
    batch = EvalBatch(policy, ref, rollout, ref_rollout, artifacts.gold, proxy, settings.temperature)
    metrics: dict[str, float] = {}
    higher: dict[str, bool | None] = {}
    for entry in host.evaluators.entries():
        evaluator = entry.cls()
        metrics.update({k: float(v) for k, v in evaluator.evaluate(batch).items()})
        higher.update(evaluator.higher_is_better)
    return metrics, higher, batch


def _samples(batch: EvalBatch, count: int) -> list[dict]:
    rows = []
    for i in range(min(count, len(batch.rollout))):
        rows.append({
            "prompt": batch.rollout.prompts[i],
            "response": batch.rollout.responses[i],
            "gold": float(batch.gold[i]),
            "proxy": float(batch.proxy[i]),
            "ended": bool(batch.rollout.ended[i]),
        })
    return rows


def run(host: PluginHost, request: RunRequest) -> list[RunResult]:
    """Run ``request`` once per seed; a crash fails that run only, Ctrl-C stops all."""
    algo_entry = host.algorithms.get(request.algorithm)
    bench_entry = host.benchmarks.get(request.benchmark)
    rm_entry = host.reward_models.get(request.reward_model)
    algo_config = request.algo_config if request.algo_config is not None else algo_entry.cls.Config()
    rm_config = request.rm_config if request.rm_config is not None else rm_entry.cls.Config()
    benchmark = bench_entry.cls(request.bench_config)
    device = resolve_device(request.device)

    artifacts = prepare(benchmark, request.cache, device, quiet=request.quiet)
    proxy = fit_reward_model(host, request.reward_model, rm_config, artifacts, device)
    budget = request.budget if request.budget is not None else artifacts.config.default_budget
    results = []
    with Store(request.store) as store:
        for seed in request.seeds:
            results.append(_run_seed(host, request, store, artifacts, proxy, algo_entry, algo_config, rm_config, budget, device, seed))
    return results


def _run_seed(host, request, store, artifacts, proxy, algo_entry, algo_config, rm_config, budget_episodes, device, seed) -> RunResult:
    benchmark = artifacts.benchmark
    name = f"{benchmark.name}__{request.algorithm}__{seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    algo_cfg = config_dict(algo_config)
    run_id = uuid.uuid4().hex[:12]
    run_dir = Path(request.results_dir) / "runs" / f"{name}__{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    info = RunInfo(run_id, name, benchmark.name, request.algorithm, request.reward_model, seed, algo_cfg, run_dir)
    (run_dir / "config.json").write_text(json.dumps({
        "algorithm": request.algorithm, "algo_config": algo_cfg, "benchmark": benchmark.name,
        "benchmark_version": benchmark.version, "benchmark_config": config_dict(artifacts.config),
        "reward_model": request.reward_model, "rm_config": config_dict(rm_config), "rm_metrics": proxy.metrics,
        "seed": seed, "budget": budget_episodes, "device": str(device),
    }, indent=2))
    log_file = (run_dir / "log.txt").open("a")
    # The store row comes last: a failure above (disk full, permissions) leaves no run stuck as "running".
    try:
        store.create_run(
            run_id=run_id,
            name=name,
            benchmark=benchmark.name,
            benchmark_version=benchmark.version,
            benchmark_config=config_dict(artifacts.config),
            algorithm=request.algorithm,
            algo_config=algo_cfg,
            config_hash=config_hash(request.algorithm, algo_cfg),
            reward_model=request.reward_model,
            rm_config=config_dict(rm_config),
            rm_is_oracle=bool(proxy.is_oracle),
            seed=seed,
            budget={"episodes": budget_episodes},
            manifest=manifest(device),
            run_dir=str(run_dir),
        )
    except BaseException:
        log_file.close()
        raise
    budget = Budget(budget_episodes)

    def log(step: int, metrics: dict[str, float]) -> None:
        metrics = {k: float(v) for k, v in metrics.items()}
        store.log_metrics(run_id, step, metrics)
        log_file.write(json.dumps({"step": step, **metrics}) + "\n")
        host.hook.harness_metrics_logged(run=info, step=step, metrics=metrics)
        _check_finite(step, metrics)

    host.hook.harness_run_started(run=info)
    status, metrics, error = "failed", {}, None
    try:
        seed_everything(seed)
        ref_model = artifacts.load_sft().requires_grad_(False)
        ctx = TrainContext(
            policy=artifacts.load_sft(), ref_policy=ref_model, tokenizer=artifacts.tokenizer, reward_model=proxy,
            train_prompts=list(artifacts.train_prompts), generation=artifacts.generation, budget=budget,
            seed=seed, device=device, run_dir=run_dir, log=log, quiet=request.quiet,
        )
        policy = algo_entry.cls(algo_config).train(ctx)
        metrics, higher, batch = evaluate(host, policy, Policy(ref_model, artifacts.tokenizer), artifacts, proxy, seed, request.quiet)
        store.add_samples(run_id, _samples(batch, STORED_SAMPLES))
        policy.save(run_dir / "policy.safetensors")
        status = "finished"
        store.finish_run(run_id, status=status, metrics=metrics, higher_is_better=higher, budget_used=budget.as_dict())
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user (Ctrl-C)"
        store.finish_run(run_id, status=status, budget_used=budget.as_dict(), error=error)
        raise
    except Exception as exc:  # a crash fails this run, stored with its reason; nothing else is lost
        error = f"{type(exc).__name__}: {exc}"
        log_file.write(traceback.format_exc())
        store.finish_run(run_id, status="failed", budget_used=budget.as_dict(), error=error)
    finally:
        log_file.close()
        host.hook.harness_run_finished(run=info, status=status, metrics=metrics, error=error)
    return RunResult(run_id, name, seed, status, metrics, error)
