"""``harness bench ppo`` (registered by the PPO plugin): our PPO's speed on exactly the setup of the TRL peer,
the project's TRL 1.12 peer script ``trl_ppo_peer.py`` (TRL 1.12's experimental PPOTrainer,
run in its own venv), so the two figures compare.

The setup, as the peer builds it: a word-level tokenizer over the same 56 words + EOS, UNK, PAD
(59 ids, PAD outside the models' vocabulary); GPT-2 2 layers × 64 (2 heads), random-init policy,
π_ref a copy of it, a random-init reward model whose score head is rescaled so that its scores on
a prompt + uniformly random response have std 1, a critic from the reward model; 256 random
4–12-word prompts (data seed 1234); batch 32, 16 new tokens with no stop token (every response
has 16 tokens), temperature 0.7, 4 PPO epochs × 1 mini-batch, 4096 episodes, AdamW lr 1e-4
decayed linearly to 0, β = 0.05 with k1, no gradient clipping, fp32, 2 threads.

"No stop token" is matched as closely as our sampler allows: every response is 16 tokens and
every position is scored, KL-penalised and trained on (PPOConfig ``stop_at_eos=False``). One
difference remains: after a row samples EOS, the peer's ``generate()`` feeds EOS fill tokens
(its pad id is EOS) while ours keeps sampling; the work per update is the same.

Prints one JSON line on stdout: episodes/s, generated tokens/s, wall seconds of ``train()``, a
time breakdown and the final mean score and KL (the peer's metric definitions). ``--profile``
prints a profile summary to stderr.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from harness.api import finite_float, non_negative_float, non_negative_int, positive_float, positive_int

#: The peer's fixed word list (trl_ppo_peer.py ``WORDS``).
WORDS = (
    "the a an one two three red green blue big small fast slow cat dog bird fish tree house car "
    "road river hill sun moon star runs jumps sees eats likes finds makes takes gives and or but "
    "with under over near far up down good bad new old happy sad very not is are was"
).split()


def build_tokenizer():
    """EOS = 0, UNK = 1, the words, PAD last (outside the models' vocabulary), as the peer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from harness.lm import EOS, PAD, UNK

    vocab = {EOS: 0, UNK: 1}
    for word in WORDS:
        vocab[word] = len(vocab)
    vocab[PAD] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, unk_token=UNK, pad_token=PAD, padding_side="left")


def build_prompts(n: int, seed: int, min_words: int = 4, max_words: int = 12) -> list[str]:
    """The peer's prompt set: the same strings for the same seed."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))) for _ in range(n)]


def calibrate_reward_scale(reward, tokenizer, prompts: list[str], response_length: int, target_std: float, seed: int) -> float:
    """Rescale the random RM's score head so that its scores on prompt + a uniformly random
    response have std ``target_std`` (the peer's ``calibrate_reward_scale``)."""
    import torch

    from harness.api import Rollout
    from harness.lm import encode_prompts

    if not target_std:
        return 1.0
    generator = torch.Generator().manual_seed(seed)
    query_ids, query_mask = encode_prompts(tokenizer, prompts)
    responses = torch.randint(0, reward.model.config.vocab_size, (len(prompts), response_length), generator=generator)
    rollout = Rollout(list(prompts), query_ids, query_mask, responses, tokenizer)
    factor = target_std / reward.raw_scores(rollout).std().item()
    with torch.no_grad():
        reward.model.score.weight.mul_(factor)
    return factor


class _Parser(argparse.ArgumentParser):
    """Mistakes are one line (the CLI prints a UsageError and exits 2), not a usage dump."""

    def error(self, message: str):
        from harness.api import UsageError

        raise UsageError(f"{message} (see harness bench ppo --help)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="harness bench ppo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--total-episodes", type=positive_int, default=4096)
    p.add_argument("--batch-size", type=positive_int, default=32, help="episodes per PPO update")
    p.add_argument("--response-length", type=positive_int, default=16)
    p.add_argument("--n-layer", type=positive_int, default=2)
    p.add_argument("--n-embd", type=positive_int, default=64)
    p.add_argument("--n-head", type=positive_int, default=2)
    p.add_argument("--kl-coef", type=non_negative_float, default=0.05)
    p.add_argument("--kl-estimator", choices=["k1", "k3"], default="k1")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--learning-rate", type=positive_float, default=1e-4)
    p.add_argument("--adam-eps", type=positive_float, default=1e-8, help="the peer's (transformers') default")
    p.add_argument("--max-grad-norm", type=positive_float, default=None, help="the peer applies none")
    p.add_argument("--num-ppo-epochs", type=positive_int, default=4)
    p.add_argument("--num-mini-batches", type=positive_int, default=1)
    p.add_argument("--temperature", type=positive_float, default=0.7)
    p.add_argument("--num-prompts", type=positive_int, default=256)
    p.add_argument("--data-seed", type=non_negative_int, default=1234)
    p.add_argument("--stop-eos", action="store_true", help="end responses at EOS (default: fixed length, as the peer)")
    p.add_argument("--missing-eos-penalty", type=finite_float, default=None)
    p.add_argument("--whiten-rewards", action="store_true")
    p.add_argument("--reward-std", type=non_negative_float, default=1.0, help="score std of the random RM on random responses (0: raw)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: PPO's forwards under torch.autocast (bf16 matmuls; log-probs, ratios, losses fp32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (the peer runs on the CPU only)")
    p.add_argument("--flop-updates", type=non_negative_int, default=2,
                   help="PPO updates replayed under torch's FLOP counter to count matmul FLOPs per episode (0: skip)")
    p.add_argument("--peak-size", type=positive_int, default=None,
                   help="n of the n×n matmul that measures the peaks (default 1024 on the CPU, 8192 on CUDA)")
    p.add_argument("--profile", nargs="?", const="torch", choices=["torch", "cprofile"], default=None,
                   help="print a profile summary to stderr (torch.profiler by default, or cProfile)")  # fmt: skip
    args = p.parse_args(argv)
    if args.batch_size > args.total_episodes:
        p.error(f"--batch-size {args.batch_size} is more than --total-episodes {args.total_episodes}: no update would run")
    if args.batch_size % args.num_mini_batches:
        p.error(f"--batch-size {args.batch_size} is not a multiple of --num-mini-batches {args.num_mini_batches}")
    if args.n_embd % args.n_head:
        p.error(f"--n-embd {args.n_embd} is not a multiple of --n-head {args.n_head}")
    return args


def bench_device(name: str):
    """The device to bench on; a :class:`UsageError` (one line) when it does not exist here."""
    import torch

    from harness.api import UsageError

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: this machine has no CUDA device (torch {torch.__version__} sees none)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: use cpu, cuda or cuda:N")
    return device


def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a CPU has nothing to wait for)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, dtype, n: int, repeats: int = 5) -> float:
    """GFLOP/s of an n×n×n matmul in ``dtype``, best of ``repeats`` timings (a few products each):
    the machine's practical peak for dense matmuls, with the threads torch uses now."""
    import torch

    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    per_timing = max(1, int(4e9 // (2 * n**3)))  # a few GFLOP per timing, so the clock's resolution doesn't matter
    for _ in range(2):  # warm-up (thread pool, oneDNN / cuBLAS kernel choice)
        a @ b
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_timing):
            a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * per_timing / best / 1e9


def count_matmul_flops(train) -> tuple[int, dict[str, int]]:
    """Matmul FLOPs of ``train()`` counted by :class:`torch.utils.flop_counter.FlopCounterMode`
    (mm, addmm, bmm, baddbmm and their backwards), plus attention: the CPU's fused attention
    kernels are not in torch's table, so they are counted with torch's own SDPA formulas (q·kᵀ
    and attention·v over the full key length, as torch counts the CUDA kernels)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

    def forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out, query, key, value)

    aten = torch.ops.aten
    attention = {aten._scaled_dot_product_flash_attention_for_cpu: forward,
                 aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}  # fmt: skip
    counter = FlopCounterMode(display=False, custom_mapping=attention)
    with counter:
        train()
    by_op = {str(op).removeprefix("aten."): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), by_op


def build(args, device, total_episodes: int):
    """The peer's set-up, from the seeds alone (so two builds are identical): (PPO, TrainContext, logs, extras)."""
    import torch
    from harness_plugins.ppo import PPO
    from harness_plugins.ppo_config import PPOConfig
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    from harness.api import Budget, GenerationSettings, TrainContext
    from harness.lm import ClassifierReward, LMShape, gpt2_config

    tokenizer = build_tokenizer()
    prompts = build_prompts(args.num_prompts, args.data_seed)
    max_prompt_len = max(len(x.split()) for x in prompts)
    shape = LMShape(args.n_layer, args.n_embd, args.n_head, max_prompt_len + args.response_length + 8)
    torch.manual_seed(args.seed)
    policy = GPT2LMHeadModel(gpt2_config(tokenizer, shape)).eval()
    ref_policy = copy.deepcopy(policy).requires_grad_(False)
    reward = ClassifierReward(GPT2ForSequenceClassification(gpt2_config(tokenizer, shape, num_labels=1)))
    reward.model.requires_grad_(False)
    scale = calibrate_reward_scale(reward, tokenizer, prompts, args.response_length, args.reward_std, args.data_seed)
    policy, ref_policy, reward.model = policy.to(device), ref_policy.to(device), reward.model.to(device)

    config = PPOConfig(
        batch_size=args.batch_size,
        num_ppo_epochs=args.num_ppo_epochs,
        num_mini_batches=args.num_mini_batches,
        stop_at_eos=args.stop_eos,
        lr=args.learning_rate,
        adam_eps=args.adam_eps,
        lr_decay=True,
        max_grad_norm=args.max_grad_norm,
        kl_coef=args.kl_coef,
        kl_estimator=args.kl_estimator,
        whiten_rewards=args.whiten_rewards,
        missing_eos_penalty=args.missing_eos_penalty,
        critic_init="reward_model",  # the peer's value model is a copy of the reward model, too
        precision=args.precision,
    )
    logs: list[dict[str, float]] = []
    ctx = TrainContext(
        model=policy,
        ref_model=ref_policy,
        tokenizer=tokenizer,
        reward_model=reward,
        train_prompts=prompts,
        generation=GenerationSettings(max_new_tokens=args.response_length, temperature=args.temperature),
        budget=Budget(total_episodes),
        seed=args.seed,
        device=device,
        run_dir=Path(tempfile.mkdtemp(prefix="harness_bench_ppo_")),
        log=lambda step, metrics: logs.append(metrics),
        quiet=True,
    )
    extras = {"reward_score_head_scale": round(scale, 4), "model_vocab_size": policy.config.vocab_size,
              "tokenizer_len": len(tokenizer), "policy_params": sum(p.numel() for p in policy.parameters())}  # fmt: skip
    return PPO(config), ctx, logs, extras


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _bench(args)
    finally:  # a command run in-process (tests, a notebook) leaves torch's threads as it found them
        torch.set_num_threads(threads)


def _bench(args) -> int:
    import torch
    import transformers

    device = bench_device(args.device)
    t_script = time.perf_counter()

    # Matmul FLOPs per episode: the first --flop-updates updates of the same run (same seeds, so the
    # same batches), replayed under the FLOP counter before the timed run (its dispatch overhead
    # would distort the timing) and scaled to the timed run's episodes.
    flops_per_episode, flops_by_op = None, {}
    if args.flop_updates:
        counted_episodes = min(args.flop_updates * args.batch_size, args.total_episodes // args.batch_size * args.batch_size)
        algo, ctx, _, _ = build(args, device, counted_episodes)
        total, flops_by_op = count_matmul_flops(lambda: algo.train(ctx))
        flops_per_episode = total / ctx.budget.episodes_used

    algo, ctx, logs, extras = build(args, device, args.total_episodes)
    load_before = os.getloadavg()[0]
    profiler = None
    if args.profile == "torch":
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
        profiler = torch.profiler.profile(activities=activities)
        profiler.start()
    elif args.profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    synchronize(device)
    t0 = time.perf_counter()
    algo.train(ctx)
    synchronize(device)
    wall = time.perf_counter() - t0
    if args.profile == "torch":
        profiler.stop()
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), file=sys.stderr)
    elif args.profile == "cprofile":
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)

    # The hardware's practical peaks, measured after the run (the same threads, a warm machine).
    peak_size = args.peak_size or (8192 if device.type == "cuda" else 1024)
    peaks = {name: round(matmul_peak(device, dtype, peak_size), 1)
             for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip

    episodes = ctx.budget.episodes_used
    generated = episodes * args.response_length if not args.stop_eos else None
    timings = dataclasses.asdict(algo.timings)
    tail = logs[-max(1, len(logs) // 10) :]

    def mean(key: str, rows) -> float:
        return sum(r[key] for r in rows) / len(rows)

    achieved = flops_per_episode * episodes / wall / 1e9 if flops_per_episode else None
    result = {
        "harness": "harness_plugins.ppo.PPO",
        "episodes": episodes,
        "ppo_updates": len(logs),
        "wall_seconds": round(wall, 3),
        "episodes_per_second": round(episodes / wall, 3),
        "generated_tokens": generated,
        "generated_tokens_per_second": round(generated / wall, 2) if generated else None,
        "precision": args.precision,
        # six significant digits: four decimals would be a 1% error at the tiny sizes tests run
        "matmul_gflop_per_episode": float(f"{flops_per_episode / 1e9:.6g}") if flops_per_episode else None,
        "matmul_gflop_by_op": {op: round(n / 1e9, 3) for op, n in flops_by_op.items()},
        "achieved_matmul_gflops": round(achieved, 2) if achieved else None,
        "peak_matmul_gflops": peaks,
        "fraction_of_fp32_peak": round(achieved / peaks["fp32"], 3) if achieved else None,
        "fraction_of_bf16_peak": round(achieved / peaks["bf16"], 3) if achieved else None,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "fractions": {k: round(v / wall, 4) for k, v in timings.items()},
        "final_mean_reward": logs[-1]["objective/scores"],
        "final_mean_kl": logs[-1]["objective/kl"],
        "first_mean_reward": logs[0]["objective/scores"],
        "first_mean_kl": logs[0]["objective/kl"],
        "last10pct_mean_reward": mean("objective/scores", tail),
        "last10pct_mean_kl": mean("objective/kl", tail),
        "metric_notes": (
            "reward = mean RM score of the update's batch (objective/scores); kl = mean over the batch of the "
            "per-response SUM of per-token KL (objective/kl), as the peer; wall = PPO.train() only; seconds: "
            "generate = sampling; score = forwards of policy+critic (kept for the first epoch's backward when there "
            "is one mini-batch), π_ref and the RM on the rollout, rewards, GAE; optimize = the PPO epochs' other "
            "forwards, every backward and AdamW step; matmul FLOPs = torch's FlopCounterMode over the first "
            f"{args.flop_updates} updates (matmuls, their backwards and attention) per episode × episodes; peaks = "
            f"best {peak_size}×{peak_size} matmul GFLOP/s in fp32 and bf16 on this device with these threads"
        ),
        "script_wall_seconds": round(time.perf_counter() - t_script, 3),
        "load_average_before": round(load_before, 2),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__},
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch_num_threads": torch.get_num_threads(),
        "hyperparameters": {
            **{k: v for k, v in vars(args).items() if k != "profile"},
            "ppo_config": vars(algo.config),
            **extras,
        },
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
