"""The TRL plugins (``dpo``, ``grpo``, ``rloo``) on the tiny benchmark: honest budgets, the harness's
token conventions (EOS, positions, padding) kept through TRL, curves, determinism, and one run of
each through the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from harness_plugins.dpo import DPO, DPOConfig, pair_columns, pairs_trainer_class
from harness_plugins.grpo import GRPO, GRPOConfig
from harness_plugins.rloo import RLOO, RLOOConfig
from harness_plugins.trl_support import (
    HarnessLog,
    ProxyReward,
    mask_positions,
    online_arguments,
    restore_after_trl,
    trl_tokenizer,
)

from harness.api import Budget, PreferenceData, PreferenceRequest, UsageError
from harness.cli import main
from harness.lm import rollout_from_texts, sample_rollout
from harness.pipeline.annotator import annotated_preferences
from harness.running.reward_fit import CountingRewardModel
from harness.store import Store
from tests.conftest import TINY_FLAGS, make_train_context, proxy_gain

ONLINE = {"grpo": (GRPO, GRPOConfig), "rloo": (RLOO, RLOOConfig)}


def counting_context(prepared, proxy, tmp_path, **kwargs):
    """A context as the runner builds it, with the RM's calls counted and the curve kept."""
    logged: list[tuple[int, dict]] = []
    ctx = make_train_context(prepared, proxy, run_dir=tmp_path, log=lambda step, m: logged.append((step, m)), **kwargs)
    ctx.reward_model = CountingRewardModel(proxy, ctx.budget)
    return ctx, logged


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, model) -> bool:
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def curve(logged, key: str) -> list[float]:
    return [m[key] for _, m in logged if key in m]


# -------------------------------------------------------------------------
# configs and glue
# -------------------------------------------------------------------------


def test_configs_check_their_flags():
    for config in (GRPOConfig, RLOOConfig):
        with pytest.raises(ValueError, match="multiple of --num-generations"):
            config(batch_size=30, num_generations=4)
        with pytest.raises(ValueError, match="--num-generations must be >= 2"):
            config(num_generations=1)
        with pytest.raises(ValueError, match="must divide --batch-size"):
            config(num_mini_batches=3)
        assert config().beta == 0.05 and config(beta=0.0).beta == 0.0
    with pytest.raises(ValueError, match="--beta must be > 0"):
        DPOConfig(beta=0)
    assert DPO().preference_request(annotation_budget=123, default_k=4) == PreferenceRequest(k=2, count=123)
    assert GRPO().preference_request(123, 4) is None and RLOO().preference_request(123, 4) is None


def test_the_proxy_reward_builds_the_rollout_from_trls_ids_and_charges_the_budget(tiny_prepared, tiny_proxy, tmp_path):
    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path, budget=3)
    tok, eos = ctx.tokenizer, ctx.tokenizer.eos_token_id
    prompts = tiny_prepared.train_prompts[:3]
    a, b = tok(prompts[0], add_special_tokens=False)["input_ids"][:2]
    ids = [[a, b, eos], [a, b, a, b], [eos]]  # ended, cut off at max_new_tokens, an empty response that ended
    reward = ProxyReward(ctx)
    scores = reward(prompts=prompts, completions=["", "", ""], completion_ids=ids)
    rollout = reward.rollout(prompts, ids)
    assert rollout.ended.tolist() == [True, False, True] and rollout.lengths.tolist() == [3, 4, 1]
    assert (rollout.response_ids[0, 3:] == tok.pad_token_id).all()  # the harness's PAD, outside the vocabulary
    expected = tiny_proxy.score(rollout_from_texts(tok, prompts, [tok.decode([a, b]), tok.decode([a, b, a, b]), ""], ended=[True, False, True]))
    assert scores == pytest.approx(expected.tolist(), abs=1e-5)
    assert ctx.budget.episodes_used == 3 and ctx.budget.rm_queries == 3
    with pytest.raises(Exception, match="episodes with 0 left"):
        reward(prompts=prompts[:1], completions=[""], completion_ids=[[eos]])  # sampled past the budget: an error


def test_the_tokenizer_trl_gets_pads_with_eos_and_the_harness_keeps_its_own(tiny_prepared):
    tok = tiny_prepared.tokenizer
    trl_tok = trl_tokenizer(tok)
    assert trl_tok.pad_token_id == tok.eos_token_id
    assert tok.pad_token_id != tok.eos_token_id  # the original is untouched


def test_harness_log_namespaces_trl_metrics_and_keeps_a_nan():
    logged = []

    class Ctx:
        budget = Budget(10, episodes_used=4)
        log = staticmethod(lambda step, m: logged.append((step, m)))

    from harness_plugins.trl_support import LOG_NAMES

    callback = HarnessLog(Ctx(), "grpo", LOG_NAMES["grpo"])
    state = type("State", (), {"global_step": 3})()
    callback.on_log(None, state, None, logs={"loss": 0.5, "reward": None, "kl": 0.1, "completions/mean_length": 7.0,
                                             "clip_ratio/low_mean": 0.0, "epoch": 1.0, "rewards/proxy/mean": 0.2})  # fmt: skip
    (step, metrics), = logged
    assert step == 3 and metrics["loss/policy"] == 0.5 and metrics["objective/kl_per_token"] == 0.1
    assert metrics["objective/scores"] != metrics["objective/scores"]  # None (all NaN in TRL) → NaN: the run stops
    assert metrics["val/response_length"] == 7.0 and metrics["grpo/clip_ratio_low_mean"] == 0.0
    assert metrics["objective/kl"] == pytest.approx(0.7)  # per sequence: per token × tokens per completion
    assert "epoch" not in metrics and "grpo/rewards_proxy_mean" not in metrics and metrics["budget/episodes_used"] == 4


def test_trl_scores_left_padded_rows_at_the_positions_the_sampler_used(tiny_prepared, tiny_proxy, tmp_path):
    """TRL's training forward passes no position_ids: a left-padded row of a GPT-2 would be scored at
    positions shifted by its padding. With :func:`mask_positions` TRL's log-probs are the harness's."""
    from datasets import Dataset
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path)
    p = tiny_prepared.train_prompts
    prompts = [p[0], f"{p[1]} {p[2]}"]  # 3 and 6 tokens: the first is left-padded
    rollout = sample_rollout(ctx.model, ctx.tokenizer, prompts, ctx.generation, torch.Generator().manual_seed(0))
    expected = ctx.log_probs(ctx.model, rollout).detach()
    eos, mask = ctx.tokenizer.eos_token_id, rollout.response_mask
    ids = torch.cat([rollout.query_ids.masked_fill(~rollout.query_mask, eos), rollout.response_ids.masked_fill(~mask, eos)], 1)  # TRL pads with EOS
    attention = torch.cat([rollout.query_mask, mask], 1).long()
    args = TRLGRPOConfig(**online_arguments(ctx, GRPOConfig(), rounds=1))
    trainer = GRPOTrainer(model=ctx.model, reward_funcs=ProxyReward(ctx), args=args, processing_class=trl_tokenizer(ctx.tokenizer),
                          train_dataset=Dataset.from_dict({"prompt": prompts}))  # fmt: skip
    try:
        with torch.no_grad():
            raw, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, mask.size(1))
            with mask_positions(ctx.model):
                fixed, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, mask.size(1))
    finally:
        restore_after_trl(ctx.model)
    assert torch.allclose(fixed[mask], expected[mask], atol=1e-4)
    assert torch.allclose(raw[1][mask[1]], expected[1][mask[1]], atol=1e-4)  # no padding: the same either way
    assert (raw[0][mask[0]] - expected[0][mask[0]]).abs().max() > 1e-2  # shifted positions: other numbers


# -------------------------------------------------------------------------
# grpo and rloo
# -------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_online_trl_plugins_spend_the_budget_count_queries_log_and_repeat(algo, tiny_prepared, tiny_proxy, tmp_path):
    cls, config = ONLINE[algo]
    results = []
    for run in range(2):  # the same seed twice: the same numbers
        ctx, logged = counting_context(tiny_prepared, tiny_proxy, tmp_path / str(run), budget=160)  # 2 rounds of 64, 32 left
        before = weights(ctx.model)
        policy = cls(config(batch_size=64, num_generations=4, num_mini_batches=2)).train(ctx)
        results.append((ctx, logged, policy, before))
    (ctx, logged, policy, before), (_, logged2, policy2, _) = results
    assert ctx.budget.episodes_used == 128 and ctx.budget.rm_queries == 128  # whole rounds only; every completion scored once
    assert policy.model is ctx.model and policy.tokenizer is ctx.tokenizer and changed(before, policy.model)
    assert not policy.model.training and "forward" not in vars(policy.model) and "forward" not in vars(ctx.ref_model)
    assert ctx.tokenizer.pad_token_id == len(ctx.tokenizer) - 1  # the harness's PAD, untouched
    assert [step for step, m in logged if "loss/policy" in m] == [1, 2, 3, 4]  # 2 rounds × 2 mini-batches
    assert curve(logged, "budget/episodes_used")[:4] == [64, 64, 128, 128]  # TRL samples a round every 2 steps
    for key in ("objective/scores", "objective/kl", "objective/kl_per_token", "optim/lr", "val/response_length"):
        assert len(curve(logged, key)) >= 2, key
    assert curve(logged, "objective/kl_per_token")[0] == pytest.approx(0, abs=1e-6)  # round 1 samples π_sft itself
    assert curve(logged, "time/episodes_per_second")[0] > 0
    assert not list((tmp_path / "0").iterdir())  # TRL left nothing in the run folder
    # determinism: the same seed gives the same weights and the same curve
    assert not changed(weights(policy.model), policy2.model)
    def numbers(log):  # everything but wall-clock times
        return [{k: v for k, v in m.items() if not k.startswith("time/")} for _, m in log if "loss/policy" in m]

    assert numbers(logged) == numbers(logged2)


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_online_trl_plugins_raise_the_proxy_on_held_out_prompts(algo, tiny_prepared, tiny_proxy, tmp_path):
    cls, config = ONLINE[algo]
    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path, budget=1024)
    policy = cls(config()).train(ctx)  # the defaults
    gap, stderr, message = proxy_gain(policy.model, ctx.ref_model, tiny_prepared, tiny_proxy)
    assert gap > 4 * stderr, message  # seeds 0 and 1 gave 6.6–10.3 standard errors (512 episodes: 2.3–6.4)


def test_a_budget_below_one_round_is_a_usage_error(tiny_prepared, tiny_proxy, tmp_path):
    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path, budget=32)
    with pytest.raises(UsageError, match="more than the budget of 32 episodes"):
        GRPO(GRPOConfig(batch_size=64)).train(ctx)
    assert ctx.budget.episodes_used == 0


# -------------------------------------------------------------------------
# dpo
# -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pairs(tiny_prepared) -> PreferenceData:
    """The tiny benchmark's annotated pairs (the pairwise RM's, already cached by tiny_proxy)."""
    request = DPO().preference_request(tiny_prepared.config.preference_prompts, tiny_prepared.config.ranking_k)
    return annotated_preferences(tiny_prepared, request).train


def pair_log_prob_margins(model, pairs: PreferenceData) -> torch.Tensor:
    """log π(chosen) − log π(rejected) of each pair, each response with EOS where it ended."""
    from harness.lm import response_log_probs

    items = pairs.items
    prompts = [i.prompt for i in items]

    def logp(pick):
        responses = [i.responses[pick(i)] for i in items]
        ended = [i.ended[pick(i)] for i in items]
        return response_log_probs(model, rollout_from_texts(pairs.tokenizer, prompts, responses, ended=ended), 1.0).sum(1)

    return logp(lambda i: i.ranking[0]) - logp(lambda i: i.ranking[-1])


def test_dpo_pairs_end_with_eos_exactly_where_the_sampled_response_did(tiny_pairs, tiny_prepared, tiny_proxy, tmp_path):
    eos = tiny_pairs.tokenizer.eos_token_id
    columns = pair_columns(tiny_pairs)
    chosen_ended = [i.ended[i.ranking[0]] for i in tiny_pairs.items]
    rejected_ended = [i.ended[i.ranking[-1]] for i in tiny_pairs.items]
    assert not all(chosen_ended + rejected_ended) and any(chosen_ended)  # both kinds occur in the data
    assert [ids[-1] == eos for ids in columns["chosen_ids"]] == chosen_ended
    assert [ids[-1] == eos for ids in columns["rejected_ids"]] == rejected_ended
    assert all(eos not in ids[:-1] for ids in columns["chosen_ids"] + columns["rejected_ids"])
    # and that is what TRL trains on: its own preprocessing (which appends EOS to every response) is skipped
    from datasets import Dataset
    from harness_plugins.trl_support import trainer_arguments
    from trl import DPOConfig as TRLDPOConfig

    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path)
    trainer = pairs_trainer_class()(model=ctx.model, ref_model=ctx.ref_model, processing_class=trl_tokenizer(ctx.tokenizer),
                                    args=TRLDPOConfig(**trainer_arguments(ctx, max_length=None)),
                                    train_dataset=Dataset.from_dict(columns))  # fmt: skip
    restore_after_trl(ctx.model, ctx.ref_model)
    assert trainer.train_dataset["rejected_ids"] == columns["rejected_ids"]


def test_dpo_learns_the_pairs_without_sampling_or_the_reward_model(tiny_pairs, tiny_prepared, tiny_proxy, tmp_path):
    ctx, logged = counting_context(tiny_prepared, tiny_proxy, tmp_path, budget=64)
    ctx.preferences = PreferenceData(tiny_pairs.items[:256], 2, tiny_pairs.tokenizer)
    before, margins_before = weights(ctx.model), pair_log_prob_margins(ctx.model, ctx.preferences)
    policy = DPO(DPOConfig(lr=3e-4, num_epochs=2, batch_size=32)).train(ctx)
    assert changed(before, policy.model) and policy.model is ctx.model and policy.tokenizer is ctx.tokenizer
    assert ctx.budget.episodes_used == 0 and ctx.budget.rm_queries == 0
    assert not policy.model.training and "forward" not in vars(ctx.model) and "forward" not in vars(ctx.ref_model)
    assert not changed(weights(tiny_prepared.load_sft()), ctx.ref_model)  # π_ref stayed π_sft
    gain = pair_log_prob_margins(policy.model, ctx.preferences) - margins_before  # the chosen response gained on the rejected
    assert gain.mean() > 3 * gain.std() / len(gain) ** 0.5, (gain.mean(), gain.std())
    losses = curve(logged, "loss/dpo")
    assert len(losses) == 16 and losses[0] == pytest.approx(0.6931, abs=1e-3)  # log 2 at π = π_ref
    assert curve(logged, "objective/rewards_margins")[-1] > 0


def test_dpo_without_preferences_is_a_clear_error(tiny_prepared, tiny_proxy, tmp_path):
    ctx, _ = counting_context(tiny_prepared, tiny_proxy, tmp_path)
    with pytest.raises(UsageError, match=r"ctx.preferences is None"):
        DPO().train(ctx)


# -------------------------------------------------------------------------
# end to end: through `harness run`
# -------------------------------------------------------------------------


@pytest.mark.parametrize("algo, flags, budget_used", [
    ("dpo", ["--num-epochs", "1", "--batch-size", "64"], {"episodes_used": 0, "rm_queries": 0, "annotations": 800}),
    ("grpo", ["--budget", "128"], {"episodes_used": 128, "rm_queries": 128}),
    ("rloo", ["--budget", "100"], {"episodes_used": 64, "rm_queries": 64}),  # one whole round of 64
])  # fmt: skip
def test_a_trl_plugin_runs_through_the_cli(algo, flags, budget_used, tmp_path, tiny_proxy):
    """--rm-epochs 2: the reward model tiny_proxy has fitted (and cached) already."""
    argv = ["run", "--algo", algo, *flags, "--rm-epochs", "2", "--seeds", "0", "--store", str(tmp_path / "store.sqlite"),
            "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS]  # fmt: skip
    assert main(argv) == 0
    with Store(tmp_path / "store.sqlite") as store:
        (run,) = store.list_runs()
        stored = store.get_run(run.run_id)
    assert stored.status == "finished", stored.error
    assert {k: stored.budget_used[k] for k in budget_used} == budget_used
    assert "eval/gold" in stored.metrics
    (folder,) = (tmp_path / "results" / "runs").iterdir()
    lines = [json.loads(line) for line in (folder / "log.txt").read_text().splitlines() if line.startswith("{")]
    assert any("loss/dpo" in m or "loss/policy" in m for m in lines)
    assert (folder / "policy.safetensors").exists() and not (folder / "trl").exists()
