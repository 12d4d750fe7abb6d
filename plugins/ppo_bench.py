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


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(args.threads)
    import transformers
    from harness_plugins.ppo import PPO
    from harness_plugins.ppo_config import PPOConfig
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    from harness.api import Budget, GenerationSettings, TrainContext
    from harness.lm import ClassifierReward, LMShape, gpt2_config

    t_script = time.perf_counter()
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
    )
    logs: list[dict[str, float]] = []
    ctx = TrainContext(
        model=policy,
        ref_model=ref_policy,
        tokenizer=tokenizer,
        reward_model=reward,
        train_prompts=prompts,
        generation=GenerationSettings(max_new_tokens=args.response_length, temperature=args.temperature),
        budget=Budget(args.total_episodes),
        seed=args.seed,
        device=torch.device("cpu"),
        run_dir=Path(tempfile.mkdtemp(prefix="harness_bench_ppo_")),
        log=lambda step, metrics: logs.append(metrics),
        quiet=True,
    )
    algo = PPO(config)
    load_before = os.getloadavg()[0]

    profiler = None
    if args.profile == "torch":
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        profiler.start()
    elif args.profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    algo.train(ctx)
    wall = time.perf_counter() - t0
    if args.profile == "torch":
        profiler.stop()
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), file=sys.stderr)
    elif args.profile == "cprofile":
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)

    episodes = ctx.budget.episodes_used
    generated = episodes * args.response_length if not args.stop_eos else None
    timings = dataclasses.asdict(algo.timings)
    tail = logs[-max(1, len(logs) // 10) :]

    def mean(key: str, rows) -> float:
        return sum(r[key] for r in rows) / len(rows)

    result = {
        "harness": "harness_plugins.ppo.PPO",
        "episodes": episodes,
        "ppo_updates": len(logs),
        "wall_seconds": round(wall, 3),
        "episodes_per_second": round(episodes / wall, 3),
        "generated_tokens": generated,
        "generated_tokens_per_second": round(generated / wall, 2) if generated else None,
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
            "forwards, every backward and AdamW step"
        ),
        "script_wall_seconds": round(time.perf_counter() - t_script, 3),
        "load_average_before": round(load_before, 2),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__},
        "device": "cpu",
        "torch_num_threads": torch.get_num_threads(),
        "hyperparameters": {
            **{k: v for k, v in vars(args).items() if k != "profile"},
            "ppo_config": vars(config),
            "reward_score_head_scale": round(scale, 4),
            "model_vocab_size": policy.config.vocab_size,
            "tokenizer_len": len(tokenizer),
            "policy_params": sum(p.numel() for p in policy.parameters()),
        },
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
