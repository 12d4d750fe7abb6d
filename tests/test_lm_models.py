"""The LM toolkit on pretrained models loaded by path (the code path of a hub id): a tiny GPT-2
of the default configuration and a tiny Llama, each written with ``save_pretrained`` beside a
BPE tokenizer that has an EOS and no PAD. Sampling, log-probs, reward heads, the critic and one
short PPO run must work on both, and the embedded GPT-2s' fast path must agree with transformers."""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path

import pytest
import torch
from harness_plugins.ppo import PPO, make_critic
from harness_plugins.ppo_config import PPOConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

from harness.api import Budget, GenerationSettings, PreferenceData, PreferenceItem, TrainContext, UsageError
from harness.lm import (
    ClassifierReward,
    check_model_tokenizer,
    classifier_scores,
    critic_values,
    fit_on_rankings,
    is_plain_gpt2,
    lm_logits,
    lm_to_classifier,
    load_causal_lm,
    load_pretrained_tokenizer,
    model_log_probs,
    response_hidden,
    response_log_probs,
    response_logits,
    sample_batch,
    sample_rollout,
    token_values,
)

SENTENCES = [
    "the movie was good and the cast was great",
    "the plot was dull and the ending was slow",
    "a fine film with a great story",
    "i liked the music but not the plot",
]
PROMPTS = ["the movie was", "a fine", "the plot was dull and the ending", "i liked"] * 6
SETTINGS = GenerationSettings(max_new_tokens=10, temperature=0.8)
CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A small BPE tokenizer with an EOS and no PAD, as many hub tokenizers are."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    special = ["<eos>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=48, special_tokens=special, end_of_word_suffix="</w>", show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


def tiny_gpt2(vocab_size: int) -> GPT2LMHeadModel:
    # GPT2Config's defaults otherwise: gelu_new, dropout 0.1 everywhere (off in eval mode)
    config = GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2, eos_token_id=0, bos_token_id=0)
    return GPT2LMHeadModel(config)


def tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    # initializer_range 0.2: attention sharp enough that wrong position ids would change the samples
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=64, eos_token_id=0, bos_token_id=0,
                         initializer_range=0.2)  # fmt: skip
    return LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pretrained")
    out = {}
    for name, build in (("gpt2", tiny_gpt2), ("llama", tiny_llama)):
        tokenizer = bpe_tokenizer()
        assert tokenizer.pad_token is None and tokenizer.eos_token_id == 0
        if name == "llama":
            tokenizer.chat_template = CHAT_TEMPLATE
        torch.manual_seed(0)
        model = build(len(tokenizer))
        with torch.no_grad():  # EOS likelier than chance, so that some responses end and some do not
            model.get_output_embeddings().weight[0] += 0.6 * model.get_output_embeddings().weight.mean(0)
        out[name] = root / name
        model.save_pretrained(str(out[name]))
        tokenizer.save_pretrained(str(out[name]))
    return out


def load(folders, name: str):
    model = load_causal_lm(folders[name])
    return model, load_pretrained_tokenizer(folders[name], model)


ARCHS = ["gpt2", "llama"]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("gpt2", GPT2LMHeadModel), ("llama", LlamaForCausalLM)])
def test_loaded_by_path_with_a_pad_of_its_own_outside_the_vocabulary(folders, name, cls):
    model = load_causal_lm(str(folders[name]))
    tokenizer = load_pretrained_tokenizer(str(folders[name]))
    assert type(model) is cls and not model.training and model.dtype == torch.float32
    rows = model.get_input_embeddings().weight.size(0)
    assert tokenizer.pad_token == "<pad>" and tokenizer.pad_token_id == rows == len(tokenizer) - 1  # appended, not resized
    assert tokenizer.pad_token_id != tokenizer.eos_token_id and tokenizer.padding_side == "left"
    assert rows == len(bpe_tokenizer())  # the model is not resized
    check_model_tokenizer(model, tokenizer)
    if name == "llama":
        assert tokenizer.chat_template == CHAT_TEMPLATE
    assert is_plain_gpt2(model) == (name == "gpt2")  # a default-config GPT-2 takes the fast path


def test_pad_equal_to_eos_is_replaced_and_reloading_keeps_the_pad(folders, tmp_path):
    tokenizer = load_pretrained_tokenizer(folders["gpt2"])
    tokenizer.save_pretrained(str(tmp_path))  # as a prepared stage stores it: its <pad> is kept, not added twice
    again = load_pretrained_tokenizer(tmp_path)
    assert again.pad_token_id == tokenizer.pad_token_id and len(again) == len(tokenizer)
    eos_padded = bpe_tokenizer()
    eos_padded.pad_token = eos_padded.eos_token  # GPT-2 / Llama fine-tunes often pad with EOS
    eos_padded.save_pretrained(str(tmp_path / "eos"))
    fixed = load_pretrained_tokenizer(tmp_path / "eos")
    assert fixed.pad_token == "<pad>" and fixed.pad_token_id == len(eos_padded)


def test_a_model_with_spare_rows_gets_its_pad_past_them(tmp_path):
    """Output rows rounded up past the tokenizer (as Qwen, Pythia): PAD must land past the last
    row, or the model could sample it; a tokenizer PAD inside the rows is replaced too."""
    tokenizer = bpe_tokenizer()
    torch.manual_seed(0)
    rows = len(tokenizer) + 6
    model = tiny_llama(rows).eval()
    tokenizer.pad_token = "<unk>"  # a PAD of its own, but one of the model's tokens
    tokenizer.save_pretrained(str(tmp_path))
    with pytest.raises(UsageError, match=rf"PAD \(id 1\) is one of the {rows} tokens the LlamaForCausalLM can sample"):
        check_model_tokenizer(model, load_pretrained_tokenizer(tmp_path))  # without the model: kept, then refused
    fitted = load_pretrained_tokenizer(tmp_path, model)  # checked inside
    assert fitted.pad_token == "<pad>" and fitted.pad_token_id == rows and len(fitted) == rows + 1
    assert fitted.convert_ids_to_tokens(rows - 1) == "<|harness_unused_5|>"  # the spare rows got placeholder tokens
    rollout = sample_rollout(model, fitted, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    assert len(rollout.responses) == len(PROMPTS)


def test_mismatched_or_unusable_pairs_are_refused_with_a_reason(folders):
    model, tokenizer = load(folders, "llama")
    torch.manual_seed(0)
    with pytest.raises(UsageError, match=r"token ids up to \d+ but the LlamaForCausalLM embeds only 20"):
        check_model_tokenizer(tiny_llama(20), tokenizer)  # another model's (smaller) vocabulary
    no_pad = bpe_tokenizer()
    with pytest.raises(UsageError, match="PAD must exist and differ from EOS"):
        check_model_tokenizer(model, no_pad)
    capped = Gemma2ForCausalLM(Gemma2Config(vocab_size=len(tokenizer) - 1, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                            final_logit_softcapping=0.5))  # fmt: skip
    with pytest.raises(UsageError, match="post-processes its logits"):
        check_model_tokenizer(capped.eval(), tokenizer)


def test_bad_sources_are_usage_errors_naming_them(folders, tmp_path):
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(UsageError, match=f"no such folder for the causal LM: {missing}"):
        load_causal_lm(missing)
    with pytest.raises(UsageError, match="no such folder for the tokenizer"):
        load_pretrained_tokenizer(str(missing))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        load_causal_lm(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=f"the causal LM {empty} has no model weights"):
        load_causal_lm(empty)
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text((folders["llama"] / "config.json").read_text())
    with pytest.raises(UsageError, match="no model weights"):
        load_causal_lm(config_only)
    with pytest.raises(UsageError, match=f"the folder {config_only} has no tokenizer"):
        load_pretrained_tokenizer(config_only)
    no_eos = tmp_path / "no-eos"
    PreTrainedTokenizerFast(tokenizer_object=bpe_tokenizer().backend_tokenizer, unk_token="<unk>").save_pretrained(str(no_eos))
    with pytest.raises(UsageError, match=f"the tokenizer {no_eos} has no EOS token"):
        load_pretrained_tokenizer(no_eos)


class _Tripwire:
    """Unpickling this creates a file: proof that a loader unpickled the weights."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_weights_are_refused_and_never_unpickled(folders, tmp_path):
    folder, marker = tmp_path / "pickled", tmp_path / "unpickled"
    folder.mkdir()
    (folder / "config.json").write_text((folders["gpt2"] / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"transformer.wte.weight": _Tripwire(marker)}))
    with pytest.raises(UsageError, match=r"only pickled weights \(pytorch_model.bin\).*never unpickles"):
        load_causal_lm(folder)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# sampling and log-probs
# ---------------------------------------------------------------------------------------------


def plain_logits(model, tokenizer, rollout) -> list[torch.Tensor]:
    """Per row, without any padding, cache or position ids: the logits of one plain
    transformers forward of prompt + response that predict the response tokens."""
    out = []
    for row in range(len(rollout)):
        ids, length = unpadded(tokenizer, rollout, row), int(rollout.lengths[row])
        with torch.no_grad():
            out.append(model(input_ids=torch.tensor([ids])).logits[0, len(ids) - length - 1 : -1])
    return out


def unpadded(tokenizer, rollout, row: int) -> list[int]:
    """Row ``row``'s prompt + response ids, without padding."""
    prompt_ids = tokenizer(rollout.prompts[row], add_special_tokens=False)["input_ids"]
    return prompt_ids + rollout.response_ids[row, : rollout.lengths[row]].tolist()


def check_rollout(rollout, tokenizer):
    """Responses end at their first EOS (kept), then PAD; some ended, some ran to the limit."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = rollout.response_ids
    assert rollout.ended.any() and not rollout.ended.all()
    for row, length, ended, text in zip(ids.tolist(), rollout.lengths.tolist(), rollout.ended.tolist(), rollout.responses):
        real = row[:length]
        assert all(t == pad for t in row[length:]) and pad not in real  # a prefix of real tokens
        assert ended == (eos in real) and (not ended or real.index(eos) == length - 1)
        assert text == tokenizer.decode([t for t in real if t != eos]) and "<pad>" not in text


@pytest.mark.parametrize("name", ARCHS)
def test_sampling_ends_rows_at_eos_and_log_probs_match_a_plain_forward(folders, name):
    model, tokenizer = load(folders, name)
    rollout = sample_rollout(model, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    check_rollout(rollout, tokenizer)
    batch = sample_batch(model, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    assert torch.equal(batch.response_ids, rollout.response_ids)  # GPT-2: the fast sampler draws the same tokens
    mask = rollout.response_mask
    with torch.no_grad():
        differentiable = model_log_probs(model, rollout, SETTINGS.temperature)
    chunked = response_log_probs(model, rollout, SETTINGS.temperature, batch_size=7)
    torch.testing.assert_close(differentiable[mask], chunked[mask], rtol=0, atol=1e-5)
    assert not differentiable[~mask].any() and not chunked[~mask].any()
    for row, logits in enumerate(plain_logits(model, tokenizer, rollout)):
        response = rollout.response_ids[row, : rollout.lengths[row]]
        expected = torch.log_softmax(logits / SETTINGS.temperature, -1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(chunked[row, : rollout.lengths[row]], expected, rtol=0, atol=1e-5)
    # the samplers' own forwards (KV cache, left padding, position ids): near T = 0 they draw the plain forward's argmax
    cold = GenerationSettings(max_new_tokens=6, temperature=1e-4)
    for sampler in (sample_rollout, sample_batch):
        greedy = sampler(model, tokenizer, PROMPTS, cold, torch.Generator().manual_seed(0))
        for row, logits in enumerate(plain_logits(model, tokenizer, greedy)):
            assert torch.equal(logits.argmax(-1), greedy.response_ids[row, : greedy.lengths[row]])
    fixed = sample_batch(model, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0), stop_at_eos=False)
    assert fixed.response_ids.shape == (len(PROMPTS), SETTINGS.max_new_tokens) and fixed.response_mask.all()


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"activation_function": "gelu_pytorch_tanh", "resid_pdrop": 0.0},
        {"scale_attn_by_inverse_layer_idx": True},
        {"dtype": torch.bfloat16},
    ],
    ids=["default", "harness-like", "inverse-layer-scale", "bfloat16"],
)
def test_gpt2_fast_path_agrees_with_transformers_or_is_not_taken(folders, tmp_path, variant):
    """A GPT-2 saved with a default GPT2Config (or a variant) computes in the fast path exactly what
    transformers computes, or goes through transformers: never other numbers."""
    variant = dict(variant)  # the parameter itself stays whole
    dtype = variant.pop("dtype", torch.float32)
    tokenizer = load_pretrained_tokenizer(folders["gpt2"])
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=len(tokenizer) - 1, n_positions=64, n_embd=32, n_layer=2, n_head=2, **variant)
    GPT2LMHeadModel(config).save_pretrained(str(tmp_path))
    model = load_causal_lm(tmp_path).to(dtype)
    assert is_plain_gpt2(model) == (dtype == torch.float32 and not variant.get("scale_attn_by_inverse_layer_idx"))
    fast = sample_batch(model, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(2))
    hf = sample_rollout(model, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(2))
    assert torch.equal(fast.response_ids, hf.response_ids)
    with torch.no_grad():
        ours = model_log_probs(model, hf, SETTINGS.temperature)
        theirs = torch.log_softmax(response_logits(model, hf, SETTINGS.temperature), -1)
    mask = hf.response_mask
    theirs = theirs.gather(-1, hf.response_ids.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(ours[mask], theirs[mask], rtol=0, atol=1e-5 if dtype == torch.float32 else 0.1)


# ---------------------------------------------------------------------------------------------
# reward heads and the critic
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("gpt2", GPT2ForSequenceClassification), ("llama", LlamaForSequenceClassification)])
def test_classifier_from_any_lm_scores_and_fits(folders, name, cls):
    lm, tokenizer = load(folders, name)
    clf = lm_to_classifier(lm, seed=3)
    assert type(clf) is cls
    assert same_weights(clf.base_model, lm.base_model)
    again = lm_to_classifier(lm, seed=3).score.weight
    assert torch.equal(clf.score.weight, again) and clf.score.weight.std().item() == pytest.approx(1 / math.sqrt(33), rel=0.35)
    rollout = sample_rollout(lm, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    clf.eval()
    with torch.no_grad():
        scores = classifier_scores(clf, rollout)
        for row in range(len(rollout)):  # by hand: the unpadded sequence's last token
            ids = unpadded(tokenizer, rollout, row)
            hidden = clf.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            assert scores[row].item() == pytest.approx(clf.score(hidden).item(), abs=1e-5)
    pairs = [[rollout.responses[2 * i], rollout.responses[2 * i + 1]] for i in range(8)]
    items = [PreferenceItem(PROMPTS[i], pair, [True, False], [0, 1]) for i, pair in enumerate(pairs)]
    before = clf.score.weight.detach().clone()
    preferences = PreferenceData(items, 2, tokenizer)
    losses = fit_on_rankings(clf, preferences, epochs=2, lr=1e-3, batch_size=4, seed=0, device="cpu", quiet=True)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses) and not torch.equal(before, clf.score.weight)


def test_gpt2_classifier_is_the_same_model_as_before(folders):
    """lm_to_classifier of a GPT-2 draws exactly what GPT2ForSequenceClassification did (cached
    reward models and seeded runs rely on it)."""
    lm, _ = load(folders, "gpt2")
    base = {k: v for k, v in lm.config.to_dict().items() if k not in ("id2label", "label2id", "architectures")}
    config = GPT2Config.from_dict({**base, "num_labels": 1})
    config.pad_token_id = None
    torch.manual_seed(5)
    before = GPT2ForSequenceClassification(config)
    before.transformer.load_state_dict(lm.transformer.state_dict())
    torch.nn.init.normal_(before.score.weight, std=1 / math.sqrt(config.n_embd + 1))
    assert same_weights(lm_to_classifier(lm, seed=5), before)


def test_classifier_reward_round_trips_on_llama(folders, tmp_path):
    lm, tokenizer = load(folders, "llama")
    reward = ClassifierReward(lm_to_classifier(lm, seed=0), gain=2.5, bias=-0.5, metrics={"rm/accuracy": 0.75})
    reward.save(tmp_path)
    loaded = ClassifierReward.load(tmp_path, "cpu")
    assert type(loaded.model) is LlamaForSequenceClassification and (loaded.gain, loaded.bias) == (2.5, -0.5)
    assert loaded.metrics == {"rm/accuracy": 0.75}
    rollout = sample_rollout(lm, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    assert torch.equal(loaded.score(rollout), reward.score(rollout))


def test_llama_hidden_states_logits_and_values(folders):
    policy, tokenizer = load(folders, "llama")
    critic = lm_to_classifier(policy, seed=1).eval()
    rollout = sample_rollout(policy, tokenizer, PROMPTS, SETTINGS, torch.Generator().manual_seed(0))
    mask = rollout.response_mask
    with torch.no_grad():
        together = response_hidden([policy, critic], rollout)  # not stackable: one transformers forward each
        apart = [response_hidden([m], rollout)[0] for m in (policy, critic)]
        for a, b in zip(together, apart):
            assert torch.equal(a, b)
        logits = lm_logits(policy, together[0], SETTINGS.temperature)
        torch.testing.assert_close(logits[mask], response_logits(policy, rollout, SETTINGS.temperature)[mask], rtol=0, atol=1e-5)
        values = critic_values(critic, together[1])
        assert values.shape == mask.shape and torch.equal(values, token_values(critic, rollout))
        for row in range(len(rollout)):  # V_t by hand: read before response token t
            ids = unpadded(tokenizer, rollout, row)
            hidden = critic.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            start = len(ids) - int(rollout.lengths[row]) - 1
            expected = critic.score(hidden[start : start + int(rollout.lengths[row])]).squeeze(-1)
            torch.testing.assert_close(values[row, : rollout.lengths[row]], expected, rtol=0, atol=1e-5)


def context(policy, tokenizer, reward, budget: int = 32) -> TrainContext:
    return TrainContext(
        model=policy, ref_model=copy.deepcopy(policy).requires_grad_(False), tokenizer=tokenizer, reward_model=reward,
        train_prompts=PROMPTS, generation=SETTINGS, budget=Budget(budget), seed=0, device=torch.device("cpu"),
        run_dir=Path("."), log=lambda step, metrics: None, quiet=True,
    )  # fmt: skip


@pytest.mark.parametrize("name", ARCHS)
def test_critic_copies_the_reward_model_only_when_it_reads_the_policys_tokens(folders, name):
    policy, tokenizer = load(folders, name)
    rm = lm_to_classifier(policy, seed=0)
    with torch.no_grad():  # a fitted RM: its backbone has moved away from the policy's
        for p in rm.base_model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    critic = make_critic(context(policy, tokenizer, ClassifierReward(rm)), "reward_model", seed=1)
    assert type(critic) is type(rm) and critic is not rm and not critic.score.weight.any()
    assert same_weights(critic.base_model, rm.base_model)
    assert rm.score.weight.any()  # the RM itself is untouched
    torch.manual_seed(0)
    other_config = GPT2Config(vocab_size=len(tokenizer) + 10, n_embd=32, n_layer=1, n_head=2, num_labels=1)
    other_vocab = GPT2ForSequenceClassification(other_config)
    critic = make_critic(context(policy, tokenizer, ClassifierReward(other_vocab)), "reward_model", seed=1)
    expected = lm_to_classifier(policy, seed=1)  # from the policy, as --critic-init policy
    assert type(critic) is type(expected) and same_weights(critic.base_model, expected.base_model)


def test_ppo_trains_a_llama_end_to_end(folders):
    policy, tokenizer = load(folders, "llama")
    reward = ClassifierReward(lm_to_classifier(policy, seed=0), gain=20.0)
    ctx = context(policy, tokenizer, reward, budget=32)
    logs = []
    ctx.log = lambda step, metrics: logs.append(metrics)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    frozen = [copy.deepcopy(m) for m in (ctx.ref_model, reward.model)]
    algo = PPO(PPOConfig(batch_size=16, num_mini_batches=2, num_ppo_epochs=2, lr=1e-3))
    trained = algo.train(ctx)
    assert same_weights(frozen[0], ctx.ref_model) and same_weights(frozen[1], reward.model)  # π_ref and the RM stay put
    assert len(logs) == 2 and ctx.budget.episodes_used == 32
    assert all(math.isfinite(v) for m in logs for v in m.values())
    assert type(algo.critic) is LlamaForSequenceClassification  # copied from the RM
    assert any(not torch.equal(before[k], v) for k, v in trained.model.state_dict().items())
    rollout = sample_rollout(trained.model, trained.tokenizer, PROMPTS[:4], SETTINGS, torch.Generator().manual_seed(0))
    assert len(rollout.responses) == 4 and rollout.lengths.min() >= 1


def test_half_precision_checkpoints_load_in_float32(tmp_path):
    """Models are trained in place with AdamW and compared by log-probs: float32 whatever was saved."""
    torch.manual_seed(0)
    tiny_llama(40).to(torch.bfloat16).save_pretrained(str(tmp_path))
    assert load_causal_lm(tmp_path).dtype == torch.float32


def test_trainers_see_the_ids_the_harness_samples():
    """A tokenizer that adds a BOS by default (Llama-style post-processor): the copy given to TRL's
    trainers adds none, as the harness's own encoding does, and pads with EOS."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from harness.lm import encode_prompts, tokenizer_for_trainers

    raw = Tokenizer(models.WordLevel({"<s>": 0, "</s>": 1, "the": 2, "movie": 3, "<unk>": 4}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<unk>")
    assert tokenizer("the movie")["input_ids"] == [0, 2, 3]  # what TRL would see from the original
    copy = tokenizer_for_trainers(tokenizer)
    harness_ids, _ = encode_prompts(tokenizer, ["the movie"])
    assert copy("the movie")["input_ids"] == harness_ids[0].tolist() == [2, 3]
    assert copy.pad_token_id == copy.eos_token_id == 1 and tokenizer("the movie")["input_ids"] == [0, 2, 3]  # the original unchanged
