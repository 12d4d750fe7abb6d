"""The ``instructions`` benchmark end to end on real formats: SFT data (alpaca), human preference
pairs (HH), tiny models loaded by path (a GPT-2 and a Llama written with ``save_pretrained``: the
same code path as a hub id), a gold reward model by path or none."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from harness.cli import main
from harness.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "e2e"
SFT_DATA, PAIRS = FIXTURES / "alpaca_small.json", FIXTURES / "hh_small.jsonl"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
#: the benchmark at test size, as `harness run` flags
SMALL = [f"--benchmark-set={s}" for s in (f"sft_data={SFT_DATA}", f"preference_data={PAIRS}", "eval_prompts=6",
         "preference_eval_prompts=6", "max_new_tokens=12", "max_positions=192", "sft_epochs=2")]  # fmt: skip


def _texts() -> list[str]:
    records = json.loads(SFT_DATA.read_text())
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    return [r["instruction"] + " " + r["input"] + " " + r["output"] for r in records] + [p["chosen"] + p["rejected"] for p in pairs]


def _tokenizer(chat_template: str | None = None, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A byte-level BPE like GPT-2's, trained on the fixtures: an EOS and no pad token, as on the hub."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_texts(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def _save(model, tokenizer, folder: Path) -> str:
    model.save_pretrained(str(folder))  # safetensors
    tokenizer.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    gpt2_tok, llama_tok = _tokenizer(), _tokenizer(CHAT_TEMPLATE)
    eos = gpt2_tok.eos_token_id
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(gpt2_tok), n_layer=1, n_embd=32, n_head=2, n_positions=256,
                                      bos_token_id=eos, eos_token_id=eos))  # fmt: skip
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(llama_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                                         bos_token_id=eos, eos_token_id=eos))  # fmt: skip
    gold = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(gpt2_tok), n_layer=1, n_embd=32, n_head=2, n_positions=256,
                                                    num_labels=1, bos_token_id=eos, eos_token_id=eos))  # fmt: skip
    small_tok = _tokenizer(vocab_size=300)
    small = small_tok.eos_token_id
    llama_small_vocab = LlamaForCausalLM(LlamaConfig(vocab_size=len(small_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                     num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                                                     bos_token_id=small, eos_token_id=small))  # fmt: skip
    return {
        "llama_small_vocab": _save(llama_small_vocab, small_tok, root / "llama_small_vocab"),
        "gpt2": _save(gpt2, gpt2_tok, root / "gpt2"),
        "llama": _save(llama, llama_tok, root / "llama"),
        "gold": _save(gold, gpt2_tok, root / "gold"),
    }


def _run(tmp_path: Path, *argv: str) -> list:
    store = tmp_path / "store.sqlite"
    code = main(["run", "--benchmark", "instructions", *SMALL, "--store", str(store), "--results-dir", str(tmp_path / "results"),
                 "--cache-dir", str(tmp_path / "cache"), "--eval-samples-per-prompt", "2", "--quiet", *argv])  # fmt: skip
    assert code == 0
    with Store(store) as s:
        return s.list_runs()


@pytest.mark.parametrize("arch, algo, flags", [("gpt2", "ppo", ["--batch-size", "16"]), ("llama", "grpo", ["--batch-size", "16"])])
def test_loaded_policy_trains_on_real_data(arch, algo, flags, models_dir, tmp_path, capsys):
    runs = _run(tmp_path, "--policy-model", models_dir[arch], "--algo", algo, "--budget", "32", *flags)
    (run,) = runs
    assert run.status == "finished", run.error
    assert run.spec.benchmark.config["policy_model"] == models_dir[arch]
    assert run.budget_used["episodes_used"] == 32
    # no gold reward by default: its metrics are not measured, the others are
    assert math.isnan(run.metrics["eval/gold"]) and math.isnan(run.metrics["eval/win_rate"])
    assert math.isfinite(run.metrics["eval/proxy"]) and math.isfinite(run.metrics["eval/kl"])
    (sft_dir,) = [p.parent for p in (tmp_path / "cache").glob("sft/*/config.json")]
    sft, trained = load_file(str(sft_dir / "model.safetensors")), load_file(str(Path(run.run_dir) / "policy.safetensors"))
    assert any(not torch.equal(sft[k], trained[k]) for k in trained if k in sft)  # the loaded model itself was trained
    assert main(["leaderboard", "--store", str(tmp_path / "store.sqlite")]) == 0
    board = capsys.readouterr().out
    lines = board.splitlines()
    header = next(line for line in lines if line.startswith("| algorithm"))
    row = next(line for line in lines if line.startswith(f"| {algo} "))
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")]))
    assert cells["gold ↑"] == cells["win_rate ↑"] == "–" and cells["proxy ↑"] != "–"
    assert "not measured (gold and win rate on a benchmark without a gold reward" in board


def test_chat_template_renders_the_prompts(models_dir, tmp_path):
    (run,) = _run(tmp_path, "--policy-model", models_dir["llama"], "--algo", "sft")
    with Store(tmp_path / "store.sqlite") as s:
        samples = s.samples(run.run_id)
    assert samples and all(x["prompt"].startswith("<|user|> ") and x["prompt"].endswith("<|assistant|> ") for x in samples)
    assert all(math.isnan(x["gold"]) for x in samples)  # not measured, stored as NULL


def test_a_gold_reward_model_by_path_is_measured(models_dir, tmp_path):
    (run,) = _run(tmp_path, "--policy-model", models_dir["gpt2"], "--algo", "sft",
                  "--benchmark-set", f"gold_reward_model={models_dir['gold']}")  # fmt: skip
    assert math.isfinite(run.metrics["eval/gold"]) and math.isfinite(run.metrics["eval/win_rate"])
    # the held-out human pairs are scored by r* too: the RM's agreement with gold is measured
    metrics = json.loads((Path(run.run_dir) / "run.json").read_text())["reward_model_metrics"]
    assert 0 <= metrics["rm/gold_accuracy"] <= 1 and math.isfinite(metrics["rm/spearman"])


def test_built_policy_and_human_pairs_feed_the_reward_model_and_dpo(tmp_path):
    """Without --policy-model a tiny GPT-2 is built from the data itself; the reward model and DPO
    learn from the human pairs (annotations charged to DPO, no episodes)."""
    runs = _run(tmp_path, "--algo", "dpo")
    (run,) = runs
    assert run.status == "finished", run.error
    assert run.budget_used["episodes_used"] == 0 and run.budget_used["annotations"] > 0
    metrics = json.loads((Path(run.run_dir) / "run.json").read_text())["reward_model_metrics"]
    assert 0 <= metrics["rm/accuracy"] <= 1 and "rm/gold_accuracy" not in metrics  # human labels, no r*


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("--policy-model=/nonexistent/model", "/nonexistent/model"),
        (f"--benchmark-set=sft_data={FIXTURES / 'missing.json'}", "missing.json"),
        ("--benchmark-set=preference_format=hhh", "preference_format must be one of"),
        ("--benchmark-set=max_positions=20", "no train prompt fits in max_positions=20"),
    ],
)
def test_bad_sources_are_one_line(flag, expected, tmp_path, capsys):
    code = main(["run", "--benchmark", "instructions", *SMALL, flag, "--algo", "sft", "--store", str(tmp_path / "s.sqlite"),
                 "--results-dir", str(tmp_path / "results"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err


@pytest.mark.parametrize("setting", ["sft_data", "preference_data"])
def test_a_data_file_that_is_not_utf8_is_one_line_naming_the_line_and_byte(setting, tmp_path, capsys):
    source = SFT_DATA if setting == "sft_data" else PAIRS
    bad = tmp_path / f"latin1{source.suffix}"
    text = source.read_text()
    bad.write_bytes(text.encode() + b"\n")
    offset = len(bad.read_bytes())
    bad.write_bytes(bad.read_bytes() + "caf\u00e9".encode("latin-1"))  # one byte 0xe9 on the last line
    line = text.count("\n") + 2
    code = main(["run", "--benchmark", "instructions", *SMALL, f"--benchmark-set={setting}={bad}", "--algo", "sft",
                 "--store", str(tmp_path / "s.sqlite"), "--results-dir", str(tmp_path / "results"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{bad}: line {line}, byte offset {offset + 3}: byte 0xe9 is not UTF-8" in err[0], err


@pytest.mark.parametrize("trainer", ["trl", "lean"])
def test_a_loaded_policy_is_fine_tuned_on_the_demonstrations(trainer, models_dir, tmp_path):
    """SFT of a --policy-model (TRL's SFTTrainer by default, or the lean loop) lowers the NLL of
    the demonstrations' responses, EOS included."""
    from harness_benchmarks.instructions import Instructions, InstructionsConfig

    from harness.lm import load_causal_lm, response_nll, rollout_from_texts
    from harness.pipeline.cache import StageCache
    from harness.pipeline.stages import prepare

    config = InstructionsConfig(sft_data=str(SFT_DATA), preference_data=str(PAIRS), eval_prompts=6, preference_eval_prompts=6,
                                max_new_tokens=12, max_positions=192, sft_epochs=3, sft_lr=3e-3, policy_model=models_dir["gpt2"],
                                sft_trainer=trainer)  # fmt: skip
    prepared = prepare(Instructions(config), StageCache(tmp_path), quiet=True)
    demonstrations = Instructions(config).sft_pairs(__import__("random").Random(0))[:16]
    rollout = rollout_from_texts(prepared.tokenizer, [p for p, _ in demonstrations], [r for _, r in demonstrations])
    with torch.no_grad():
        before = response_nll(load_causal_lm(models_dir["gpt2"]), rollout).item()
        after = response_nll(prepared.load_sft(), rollout).item()
    assert after < before - 0.25, (before, after)


def test_a_reward_model_base_with_its_own_tokenizer(models_dir, tmp_path):
    """--reward-model-base: the RM starts from another model (here a Llama with another vocabulary)
    and re-tokenizes the policy's texts; PPO's critic then starts from the policy, not the RM."""
    from harness.lm import ClassifierReward

    (run,) = _run(tmp_path, "--policy-model", models_dir["gpt2"], "--reward-model-base", models_dir["llama_small_vocab"],
                  "--algo", "ppo", "--budget", "32", "--batch-size", "16")  # fmt: skip
    assert run.status == "finished", run.error
    assert run.spec.benchmark.config["reward_model_base"] == models_dir["llama_small_vocab"]
    assert math.isfinite(run.metrics["eval/proxy"])
    (folder,) = [p.parent for p in (tmp_path / "cache").glob("reward_model/*/tokenizer")]
    fitted = ClassifierReward.load(folder, "cpu")
    # its own vocabulary (+ PAD), not the policy's 400 tokens: scoring the policy's ids as they are would fail
    assert fitted.model.get_input_embeddings().num_embeddings == len(fitted.tokenizer) - 1 == 300


def test_held_out_conversations_never_reach_training():
    """On OASST threads, a held-out conversation is held out whole: its later turns (whose prompts
    contain the held-out first turn and its reply) are in no SFT pair, corpus text, train prompt
    or preference item."""
    import random

    from harness_benchmarks.instructions import Instructions, InstructionsConfig

    oasst = str(Path(__file__).parent / "fixtures" / "data" / "oasst2_trees.jsonl")
    leaked = []
    for seed in range(6):  # different held-out conversations
        bench = Instructions(InstructionsConfig(sft_data=oasst, sft_format="oasst2", preference_data=oasst,
                                                preference_format="oasst2", eval_prompts=1, seed=seed))  # fmt: skip
        (root,), (eval_prompt,) = bench._held_out
        assert root in eval_prompt
        rng = random.Random(0)
        seen = [p for p, _ in bench.sft_pairs(rng)] + bench.corpus(rng) + bench.prompts(rng)[0]
        seen += [item.prompt for item in bench.human_preferences(rng)]
        leaked += [text for text in seen if root in text]
        assert bench.prompts(rng)[1] == [eval_prompt]
    assert not leaked, leaked
