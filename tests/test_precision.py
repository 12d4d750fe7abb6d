"""``--precision bf16``: PPO's forwards run their matmuls in bf16, while weights, gradients,
log-probs, ratios, advantages and losses stay fp32; a bf16 run is as deterministic as an fp32
one; and ``harness bench ppo`` measures FLOPs, peaks and refuses a device that is not there."""

from __future__ import annotations

import json

import pytest
import torch
from harness_plugins import ppo
from harness_plugins.ppo import PPO
from harness_plugins.ppo_config import PPOConfig
from torch.utils._python_dispatch import TorchDispatchMode

from harness.cli import main
from harness.lm import autocast, model_log_probs, sample_batch
from tests.test_ppo import SMALL, synthetic_context

MATMULS = {"mm", "addmm", "bmm", "baddbmm"}


class MatmulDtypes(TorchDispatchMode):
    """The dtypes every matmul of the wrapped code computed in (forward and backward), and every
    copy of bf16 values into a float32 tensor (an up-cast written in place: a cache kept in fp32)."""

    def __init__(self):
        super().__init__()
        self.seen: set[torch.dtype] = set()
        self.calls: list[tuple[str, torch.dtype, set[int]]] = []  # (op, dtype, every operand dimension)
        self.upcast_copies = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in MATMULS:
            self.seen.add(out.dtype)
            self.calls.append((name, out.dtype, {n for a in args if isinstance(a, torch.Tensor) for n in a.shape}))
        if name == "copy_" and args[0].dtype == torch.float32 and args[1].dtype == torch.bfloat16:
            self.upcast_copies += 1
        return out


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_bf16_computes_the_blocks_in_bf16_the_heads_and_every_probability_ratio_and_loss_in_fp32(monkeypatch):
    seen_by_loss = []
    original = ppo.policy_loss

    def recording(logp, old_logp, advantages, mask, cliprange):
        seen_by_loss.append({logp.dtype, old_logp.dtype, advantages.dtype})
        loss, stats = original(logp, old_logp, advantages, mask, cliprange)
        seen_by_loss.append({loss.dtype, stats["ratio"].dtype})
        return loss, stats

    monkeypatch.setattr(ppo, "policy_loss", recording)
    for precision, blocks in [("bf16", torch.bfloat16), ("fp32", torch.float32)]:
        seen_by_loss.clear()
        ctx = synthetic_context(budget=32)
        vocab = ctx.model.config.vocab_size  # the LM head's matmuls, forward and backward, have this dimension
        with MatmulDtypes() as matmuls:
            policy = PPO(PPOConfig(**SMALL, precision=precision)).train(ctx)
        # every block's matmul -- sampling, π_ref, the RM, the critic, forward and backward -- in bf16 (no
        # forward left outside autocast); the LM head in fp32, forward and backward
        assert {dtype for op, dtype, _ in matmuls.calls if op in ("bmm", "baddbmm")} == {blocks}
        head_calls = [dtype for op, dtype, dims in matmuls.calls if op == "mm" and vocab in dims]
        assert head_calls and set(head_calls) == {torch.float32}
        assert seen_by_loss and all(dtypes == {torch.float32} for dtypes in seen_by_loss)
        assert all(p.dtype == torch.float32 for p in policy.model.parameters())  # fp32 master weights


def test_a_bf16_run_is_deterministic_and_differs_from_fp32_only_by_rounding():
    def train(precision: str, seed: int = 0) -> tuple[dict, list]:
        logs = []
        ctx = synthetic_context(budget=32, seed=seed, log=lambda step, m: logs.append(m))
        weights = PPO(PPOConfig(**SMALL, precision=precision)).train(ctx).model.state_dict()
        return weights, logs

    a, logs_a = train("bf16")
    b, _ = train("bf16")
    assert all(torch.equal(a[k], b[k]) for k in a)
    fp32, logs_fp32 = train("fp32")
    assert any(not torch.equal(a[k], fp32[k]) for k in a)  # bf16 really changes the arithmetic
    # the first batch is sampled from the same weights: the same mean score up to bf16 rounding
    assert logs_a[0]["objective/scores"] == pytest.approx(logs_fp32[0]["objective/scores"], abs=0.5)


def test_the_lm_and_value_heads_compute_fp32_from_the_fp32_hidden_state_under_bf16_too():
    from harness_plugins.ppo import make_critic

    from harness.lm import critic_values, lm_logits

    ctx = synthetic_context()
    critic = make_critic(ctx, "policy", seed=0)
    torch.nn.init.normal_(critic.score.weight)  # a value head that is not zero
    hidden = torch.randn(4, 8, ctx.model.config.n_embd)
    with torch.no_grad():
        exact = lm_logits(ctx.model, hidden, 0.7), critic_values(critic, hidden)
        with autocast("cpu", "bf16"):
            mixed = lm_logits(ctx.model, hidden, 0.7), critic_values(critic, hidden)
    for m, e in zip(mixed, exact):
        assert m.dtype == torch.float32 and torch.equal(m, e)


def test_bf16_log_probs_are_fp32_and_close_to_the_fp32_ones():
    ctx = synthetic_context()
    rollout = sample_batch(ctx.model, ctx.tokenizer, ctx.train_prompts[:16], ctx.generation, torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = model_log_probs(ctx.model, rollout, 1.0)
        with autocast("cpu", "bf16"):
            mixed = model_log_probs(ctx.model, rollout, 1.0)
    assert mixed.dtype == torch.float32 and not torch.equal(mixed, exact)
    # bf16 keeps 8 bits of mantissa: per-token log-probs within a few hundredths of a nat
    assert (mixed - exact).abs().max() < 0.1


def test_the_bf16_sampler_keeps_its_kv_cache_in_bf16_and_samples_the_same_shapes():
    ctx = synthetic_context()
    with autocast("cpu", "bf16"), MatmulDtypes() as matmuls:
        rollout = sample_batch(ctx.model, ctx.tokenizer, ctx.train_prompts[:8], ctx.generation, torch.Generator().manual_seed(0),
                               stop_at_eos=False)  # fmt: skip
    assert {dtype for op, dtype, _ in matmuls.calls if op != "mm"} == {torch.bfloat16}  # the blocks; the LM head is fp32
    assert matmuls.upcast_copies == 0  # keys and values cached as computed
    assert rollout.response_ids.shape == (8, ctx.generation.max_new_tokens)


def test_precision_is_a_validated_flag_and_part_of_the_run_identity():
    with pytest.raises(ValueError, match="--precision must be fp32 or bf16"):
        PPOConfig(precision="fp16")
    from harness.config import config_dict

    assert config_dict(PPOConfig(precision="bf16")) != config_dict(PPOConfig())  # a bf16 run is its own row


def test_bench_counts_matmul_flops_measures_both_peaks_and_reports_the_precision(capsys):
    argv = ["bench", "ppo", "--total-episodes", "32", "--batch-size", "16", "--n-layer", "1", "--n-embd", "32",
            "--threads", "1", "--peak-size", "128", "--flop-updates", "1"]  # fmt: skip
    results = {}
    for precision in ("fp32", "bf16"):
        assert main(argv + ["--precision", precision]) == 0
        results[precision] = json.loads(capsys.readouterr().out)
    fp32, bf16 = results["fp32"], results["bf16"]
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    # the same work counted either way: FLOPs depend on shapes, not on the dtype
    assert fp32["matmul_gflop_per_episode"] == pytest.approx(bf16["matmul_gflop_per_episode"], rel=0.05)
    assert fp32["matmul_gflop_by_op"]["baddbmm"] > 0 and "bmm" in fp32["matmul_gflop_by_op"]  # forwards and backwards
    for r in results.values():
        assert set(r["peak_matmul_gflops"]) == {"fp32", "bf16"} and min(r["peak_matmul_gflops"].values()) > 0
        # wall_seconds is printed to the millisecond: at these tiny sizes that rounding alone can be 1%
        assert r["achieved_matmul_gflops"] == pytest.approx(
            r["matmul_gflop_per_episode"] * r["episodes"] / r["wall_seconds"], rel=0.001 + 0.0005 / r["wall_seconds"], abs=0.01)
        assert r["fraction_of_fp32_peak"] == pytest.approx(r["achieved_matmul_gflops"] / r["peak_matmul_gflops"]["fp32"], rel=0.01, abs=0.002)


def test_bench_flop_count_matches_a_hand_count_of_the_blocks():
    """One forward of a GPT-2 block on N tokens is 2·N·(3d² + d² + 8d²) FLOPs in its four
    linear layers -- in the last block, only the query/key/value projection runs on every token,
    the rest on the response's positions alone; the counter must see exactly that (attention and
    the head come on top)."""
    from harness_plugins.ppo_bench import count_matmul_flops

    from harness.lm import response_hidden

    ctx = synthetic_context()
    rollout = sample_batch(ctx.model, ctx.tokenizer, ctx.train_prompts[:8], ctx.generation, torch.Generator().manual_seed(0))
    d, n_layer = ctx.model.config.n_embd, ctx.model.config.n_layer
    rows, response = rollout.query_ids.size(0), rollout.response_ids.size(1)
    tokens = rows * (rollout.query_ids.size(1) + response - 1)
    with torch.no_grad():
        total, by_op = count_matmul_flops(lambda: response_hidden([ctx.model], rollout))
    assert by_op["baddbmm"] == 2 * tokens * 12 * d * d * (n_layer - 1) + 2 * tokens * 3 * d * d + 2 * rows * response * 9 * d * d
    assert total > by_op["baddbmm"]  # attention counted as well


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: --device cuda is valid here")
def test_bench_on_a_missing_device_is_a_one_line_error(capsys):
    assert main(["bench", "ppo", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "Traceback" not in err
    assert main(["bench", "ppo", "--device", "gpu0"]) == 2
    assert "is not a device" in capsys.readouterr().err
