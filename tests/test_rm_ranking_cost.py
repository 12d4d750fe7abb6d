"""rm-ranking does PPO's work per update at equal settings (goal: ≤ 1.2× PPO's cost per episode).

rm-ranking only changes which prompts a batch holds (batch_size / K prompts, each K times) and
what an episode's score is (its rank in its group); everything that costs time is PPO's loop. So
at equal settings and equal response lengths an update must sample, score and run the networks on
tensors of exactly PPO's shapes, the same number of times. These tests count that work — sampler
calls and their tensor shapes, proxy-RM rows, transformer passes and their shapes — rather than
timing it, so they hold on a loaded machine. (Measured on the embedded sentiment benchmark: the
same CPU seconds per update at equal lengths; rank rewards do drive responses to
max_new_tokens, which is more real tokens per episode but not a wider padded batch.)
"""

from __future__ import annotations

import pytest
import torch
from harness_plugins.ppo import PPO, PPOConfig
from harness_plugins.rm_ranking import RMRanking, RMRankingConfig

from harness.lm import fast_gpt2
from tests.conftest import make_train_context

#: two updates of 16 episodes, two epochs of two mini-batches: every code path of an update
SETTINGS = {"batch_size": 16, "num_ppo_epochs": 2, "num_mini_batches": 2}
BUDGET = 32
UPDATES = BUDGET // SETTINGS["batch_size"]


class CountingRM:
    """The proxy, recording how many rows each ``score`` call gets."""

    def __init__(self, rm):
        self.rm, self.rows = rm, []

    def __getattr__(self, name):
        return getattr(self.rm, name)

    def score(self, rollout):
        self.rows.append(len(rollout))
        return self.rm.score(rollout)


def work_done(algorithm, prepared, proxy) -> dict:
    """Train ``algorithm`` for :data:`BUDGET` episodes and return the work it did: each sampler
    call (distinct prompts asked for, k, stop_at_eos, query and response shapes), each transformer
    pass (models stacked, input shape, with gradients or not) and the rows the proxy scored."""
    ctx = make_train_context(prepared, CountingRM(proxy), budget=BUDGET, seed=0)
    samples, passes, groups = [], [], []
    sample = ctx.sample

    def counting_sample(prompts, k=1, **kwargs):
        rollout = sample(prompts, k, **kwargs)
        samples.append((len(prompts), k, kwargs.get("stop_at_eos", True), tuple(rollout.query_ids.shape),
                        tuple(rollout.response_ids.shape)))  # fmt: skip
        groups.append(rollout)
        return rollout

    ctx.sample = counting_sample
    hidden = fast_gpt2.gpt2_hidden

    def counting_hidden(models, input_ids, *args, **kwargs):
        passes.append((len(models), tuple(input_ids.shape), torch.is_grad_enabled()))
        return hidden(models, input_ids, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_gpt2, "gpt2_hidden", counting_hidden)
        algorithm.train(ctx)
    return {"samples": samples, "passes": passes, "rm_rows": ctx.reward_model.rows,
            "episodes": ctx.budget.episodes_used, "rollouts": groups}  # fmt: skip


@pytest.fixture(scope="module")
def equal_length_work(tiny_prepared, tiny_proxy):
    """PPO's and rm-ranking's work at equal settings and equal response lengths (no early stop:
    every response has max_new_tokens tokens)."""
    ppo = work_done(PPO(PPOConfig(**SETTINGS, stop_at_eos=False)), tiny_prepared, tiny_proxy)
    rmr = work_done(RMRanking(RMRankingConfig(**SETTINGS, stop_at_eos=False)), tiny_prepared, tiny_proxy)
    return ppo, rmr


def test_same_prompt_lengths(tiny_prepared):
    """The comparison below is shape for shape: it assumes every train prompt has one token count."""
    lengths = {len(tiny_prepared.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in tiny_prepared.train_prompts}
    assert len(lengths) == 1


def test_rm_ranking_samples_what_ppo_samples(equal_length_work, tiny_prepared):
    ppo, rmr = equal_length_work
    width = tiny_prepared.generation.max_new_tokens
    batch = SETTINGS["batch_size"]
    # one sampler call per update, batch_size rows of max_new_tokens tokens: not K × batch_size
    assert ppo["samples"] == [(batch, 1, False, ppo["samples"][0][3], (batch, width))] * UPDATES
    assert rmr["samples"] == ppo["samples"]
    assert rmr["episodes"] == ppo["episodes"] == BUDGET


def test_rm_ranking_scores_what_ppo_scores(equal_length_work):
    ppo, rmr = equal_length_work
    assert rmr["rm_rows"] == ppo["rm_rows"] == [SETTINGS["batch_size"]] * UPDATES


def test_rm_ranking_runs_ppo_passes_on_ppo_shapes(equal_length_work):
    """The same transformer passes (models stacked, [rows, columns], with or without gradients),
    in the same order: rollout scoring and every mini-batch of every epoch."""
    ppo, rmr = equal_length_work
    assert ppo["passes"], "the policy is a plain GPT-2: its passes go through gpt2_hidden"
    assert rmr["passes"] == ppo["passes"]


def test_a_group_shares_one_prompt_and_its_padding(equal_length_work):
    """K copies of a prompt are consecutive rows with identical query ids and mask: repetition
    neither widens the queries nor pads one copy differently from another."""
    _, rmr = equal_length_work
    k = RMRankingConfig().k
    for rollout in rmr["rollouts"]:
        queries = rollout.query_ids.view(-1, k, rollout.query_ids.size(1))
        masks = rollout.query_mask.view(-1, k, rollout.query_mask.size(1))
        assert torch.equal(queries, queries[:, :1].expand_as(queries))
        assert torch.equal(masks, masks[:, :1].expand_as(masks))
        assert len(set(rollout.prompts)) == len(rollout) // k


def test_rm_ranking_stops_at_eos_as_ppo_does(tiny_prepared, tiny_proxy):
    """By default both ask the sampler to stop at EOS (the sampler then stops once every row of the
    batch has ended), with one call of batch_size rows per update."""
    ppo = work_done(PPO(PPOConfig(**SETTINGS)), tiny_prepared, tiny_proxy)
    rmr = work_done(RMRanking(RMRankingConfig(**SETTINGS)), tiny_prepared, tiny_proxy)
    for work in (ppo, rmr):
        assert [(n, k, stop) for n, k, stop, _, _ in work["samples"]] == [(SETTINGS["batch_size"], 1, True)] * UPDATES
