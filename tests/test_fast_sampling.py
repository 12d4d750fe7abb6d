"""sample_rollout's fast path for plain GPT-2s (harness.lm.fast_gpt2.gpt2_sample) against the
transformers path it replaced (``fast=False``): the same tokens for the same seed, the same
distribution for other seeds (a chi-square test that a dropped temperature or a shifted position
fails), and evaluation, checkpoint measurements and best-of-n all taking it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from harness_plugins.baselines import BestOfNPolicy
from harness_plugins.ppo_bench import build_prompts, build_tokenizer
from scipy.stats import chi2, chi2_contingency
from transformers import GPT2LMHeadModel

from harness.api import GenerationSettings, Policy
from harness.lm import LMShape, fast_gpt2, gpt2_config, sample_rollout, sampling
from harness.rollout import Rollout
from harness.running.checkpoints import best_of_n_curve, measure
from harness.running.evaluation import evaluate
from harness.specs import EvaluationSettings

TOKENIZER = build_tokenizer()
SETTINGS = GenerationSettings(max_new_tokens=3, temperature=0.7)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def peaked_gpt2(**extra) -> GPT2LMHeadModel:
    """A random one-layer GPT-2 (59 tokens) whose weights have std 0.2 instead of 0.02: its
    next-token distributions have ~2.7 nats of entropy at T = 0.7 instead of a near-uniform ~4,
    so that temperature and position matter (T = 0.7 vs 1: ~0.19 apart in total variation)."""
    torch.manual_seed(0)
    config = gpt2_config(TOKENIZER, LMShape(n_layer=1, n_embd=32, n_head=2, n_positions=40), **extra)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:  # embeddings (tied LM head) and projections; norms and biases stay
                p.normal_(0.0, 0.2)
    return model


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# the same tokens for the same seed: switching paths changes no recorded number
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.7, 1.0])
@pytest.mark.parametrize("n_prompts, batch_size", [(40, 1), (300, 128)], ids=["one-row-chunks", "partial-last-chunk"])
def test_both_paths_draw_the_same_tokens_from_the_same_seed(temperature, n_prompts, batch_size):
    model = peaked_gpt2()
    prompts = build_prompts(n_prompts, seed=3)  # 4–12 words: left padding differs per row
    settings = GenerationSettings(max_new_tokens=10, temperature=temperature)
    fast = sample_rollout(model, TOKENIZER, prompts, settings, seeded(5), batch_size=batch_size)
    slow = sample_rollout(model, TOKENIZER, prompts, settings, seeded(5), batch_size=batch_size, fast=False)
    assert torch.equal(fast.response_ids, slow.response_ids)
    assert torch.equal(fast.query_ids, slow.query_ids) and torch.equal(fast.query_mask, slow.query_mask)
    assert fast.prompts == slow.prompts == prompts
    assert fast.ended.any() and not fast.ended.all()  # rows ended at EOS, then PAD: both exercised
    if batch_size == 1:  # a one-row chunk that ended early is right-padded to the longest one
        assert (fast.lengths < settings.max_new_tokens).any() and fast.response_ids.size(1) == settings.max_new_tokens


# ---------------------------------------------------------------------------------------------
# the same distribution from other seeds: what the sampler draws, not only how the seed is read
# ---------------------------------------------------------------------------------------------


def homogeneity_p_value(a: Rollout, b: Rollout, position: int) -> float:
    """p-value of "``a`` and ``b`` draw response token ``position`` from the same distribution
    given the prompt": per prompt a 2 × K chi-square test of homogeneity on the token counts (PAD
    after an EOS is a token too; tokens with fewer than 10 draws in both together are pooled), the
    prompts' statistics and degrees of freedom summed (their samples are independent)."""
    statistic, dof = 0.0, 0
    for prompt in dict.fromkeys(a.prompts):
        counts = []
        for rollout in (a, b):
            rows = [i for i, p in enumerate(rollout.prompts) if p == prompt]
            counts.append(torch.bincount(rollout.response_ids[rows, position], minlength=len(TOKENIZER)))
        common = (counts[0] + counts[1]) >= 10
        table = [[*c[common].tolist(), int(c[~common].sum())] for c in counts]
        table = [list(col) for col in zip(*table) if sum(col) > 0]  # drop an empty pool
        if len(table) < 2:
            continue
        result = chi2_contingency(list(zip(*table)), correction=False)
        statistic, dof = statistic + result.statistic, dof + result.dof
    return float(chi2.sf(statistic, dof))


def test_fast_path_samples_the_distribution_the_transformers_path_samples():
    """Fast path vs transformers path on 8 prompts × 600 samples × 3 tokens, each position a
    chi-square test at a family-wise level of 10⁻³ (between two seeds of one path, p-values spread
    uniformly). A positive control shows the test's power: the transformers path at T = 1
    instead of 0.7 is rejected with p < 10⁻⁸ at every position (p ≈ 10⁻¹⁷ to 10⁻²³ here)."""
    model = peaked_gpt2()
    prompts = [p for p in build_prompts(8, seed=1) for _ in range(600)]
    fast = sample_rollout(model, TOKENIZER, prompts, SETTINGS, seeded(1))
    slow = sample_rollout(model, TOKENIZER, prompts, SETTINGS, seeded(2), fast=False)
    hot = sample_rollout(model, TOKENIZER, prompts, GenerationSettings(SETTINGS.max_new_tokens, 1.0), seeded(3), fast=False)
    for position in range(SETTINGS.max_new_tokens):
        assert homogeneity_p_value(fast, slow, position) > 1e-3 / SETTINGS.max_new_tokens, f"response token {position}"
        assert homogeneity_p_value(hot, slow, position) < 1e-8, f"no power at response token {position}"


# ---------------------------------------------------------------------------------------------
# who takes the fast path: evaluation, checkpoint measurements, best-of-n; not other models
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sampled_rows(monkeypatch) -> dict[str, int]:
    """Rows sampled by each path, counted at the samplers themselves."""
    rows = {"fast": 0, "transformers": 0}

    def counting(original, key):
        def wrapper(model, query_ids, *args, **kwargs):
            rows[key] += query_ids.size(0)
            return original(model, query_ids, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(fast_gpt2, "gpt2_sample", counting(fast_gpt2.gpt2_sample, "fast"))
    monkeypatch.setattr(sampling, "sample_responses", counting(sampling.sample_responses, "transformers"))
    return rows


class LengthReward:
    """A stand-in proxy: the response length."""

    def score(self, rollout: Rollout) -> torch.Tensor:
        return rollout.lengths.float()


def test_policy_sampling_evaluation_checkpoints_and_best_of_n_take_the_fast_path(sampled_rows):
    model = peaked_gpt2().train()  # sampling puts it in eval mode (and back): then it is plain GPT-2
    policy, prompts = Policy(model, TOKENIZER), build_prompts(6, seed=4)
    policy.sample(prompts, SETTINGS, seeded(0))
    assert sampled_rows == {"fast": 6, "transformers": 0} and model.training

    model.eval()
    prepared = SimpleNamespace(eval_prompts=prompts, generation=SETTINGS, judge=SimpleNamespace(has_gold=False))
    evaluate([], policy, Policy(peaked_gpt2(), TOKENIZER), prepared, LengthReward(), 0, EvaluationSettings(samples_per_prompt=2))
    assert sampled_rows == {"fast": 6 + 2 * 12, "transformers": 0}  # π's and π_sft's samples

    measure(policy, policy, prompts, SETTINGS, 0, None, LengthReward())  # a checkpoint point
    assert sampled_rows == {"fast": 30 + 6, "transformers": 0}

    best_of_4 = BestOfNPolicy(model, TOKENIZER, LengthReward(), n=4)
    chosen = best_of_4.sample(prompts, SETTINGS, seeded(0))
    assert len(chosen) == 6 and chosen.prompts == prompts
    best_of_n_curve(best_of_4.best_of_n_base, prompts, 4, SETTINGS, 0, None, LengthReward())  # its checkpoint curve
    assert sampled_rows == {"fast": 36 + 4 * 6 + 4 * 6, "transformers": 0}


def test_other_models_and_fast_false_take_the_transformers_path(sampled_rows):
    prompts = build_prompts(6, seed=4)
    other = peaked_gpt2(scale_attn_by_inverse_layer_idx=True)  # not a plain GPT-2 (fast_gpt2.is_plain_gpt2)
    Policy(other, TOKENIZER).sample(prompts, SETTINGS, seeded(0))
    sample_rollout(peaked_gpt2(), TOKENIZER, prompts, SETTINGS, seeded(0), fast=False)
    assert sampled_rows == {"fast": 0, "transformers": 12}
