"""Dataset adapters (harness.data): real public samples, small hand-written fixtures in the
real formats, and every way input can be wrong. No network: a Hub id must fail fast and clearly."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.data import (
    FORMATS,
    DataError,
    PreferencePair,
    Ranking,
    SFTExample,
    describe,
    load,
    load_pairs,
    load_prompts,
    load_rankings,
    load_sft,
    render_prompt,
)
from harness.cli.data import add_data_command, cmd_data, data_command
from harness.data.conversation import split_final_replies
from harness.data.errors import Skip
from harness.errors import UsageError

SHARED_DATA = Path(os.environ.get("HARNESS_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data"))
FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture(autouse=True)
def offline_datasets(tmp_path_factory, monkeypatch):
    """The Hub is never tried (a reachable-looking id fails at once), and ``datasets`` caches go to a temporary folder."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf-datasets"))


def shared(relative: str) -> str:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared sample {relative} not found under {SHARED_DATA} (set HARNESS_SHARED_DATA)")
    return str(path)


def write_jsonl(path: Path, records: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def message(role: str, content: str) -> dict:
    return {"role": role, "content": content}


# -------------------------------------------------------------------------
# real public samples (/work/shared/data; see each SOURCES.md)
# -------------------------------------------------------------------------


def test_alpaca_tiny_renders_back_to_its_own_text_field():
    path = shared("alpaca/alpaca_tiny.json")
    examples, report = load_sft("alpaca", path)
    raw = json.loads(Path(path).read_text())
    assert (report.records, report.kept, report.skipped) == (100, 100, Counter())
    assert examples[0].prompt == [message("user", "Give three tips for staying healthy.")]
    assert examples[0].index == 0 and examples[0].category is None
    # the `text` column is Alpaca's own rendering: prompt template (with or without ### Input:) + output
    assert [render_prompt(e.prompt) + e.response for e in examples] == [r["text"] for r in raw]
    assert sum("### Input:" in render_prompt(e.prompt) for e in examples) == sum(bool(r["input"]) for r in raw) > 0


def test_alpaca_en_demo_loads_all_999_with_412_inputs():
    examples, report = load_sft("alpaca", shared("alpaca/alpaca_en_demo.json"))
    assert report.records == report.kept == 999
    with_input = [e for e in examples if "input" in e.prompt[0]]
    assert len(with_input) == 412  # SOURCES.md
    assert with_input[0].prompt[0]["content"] == f"{with_input[0].prompt[0]['instruction']}\n\n{with_input[0].prompt[0]['input']}"


def test_dolly_hhrlhf_prompts_lose_their_template_and_render_back():
    path = shared("dolly/dolly_hhrlhf_train_small.jsonl")
    examples, report = load_sft("prompt-response", path)
    raw = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert report.records == report.kept == 1000
    assert examples[0].prompt == [message("user", "what is kangen water?")]
    assert not any("### Instruction" in e.prompt[0]["content"] or e.prompt[0].get("templated") for e in examples)
    assert [render_prompt(e.prompt) for e in examples] == [r["prompt"] for r in raw]
    assert [e.response for e in examples] == [r["response"] for r in raw]


def test_dpo_en_demo_sharegpt_pairs_keep_every_turn():
    path = shared("preference_pairs/dpo_en_demo.json")
    pairs, report = load_pairs("sharegpt-pairs", path)
    raw = json.loads(Path(path).read_text())
    assert report.records == report.kept == 300
    # SOURCES.md: turns per conversation, and 80 conversations open with a system turn
    assert Counter(len(p.prompt) for p in pairs) == {1: 114, 2: 80, 5: 57, 7: 46, 3: 1, 9: 1, 13: 1}
    assert sum(p.prompt[0]["role"] == "system" for p in pairs) == 80
    assert all(p.prompt[-1]["role"] == "user" for p in pairs)
    assert (pairs[0].chosen, pairs[0].rejected) == (raw[0]["chosen"]["value"], raw[0]["rejected"]["value"])


def test_stack_exchange_pairs_prefer_response_j():
    path = shared("preference_pairs/stack_exchange_paired_tiny.json")
    pairs, report = load_pairs("stack-exchange", path)
    raw = json.loads(Path(path).read_text())
    assert report.records == report.kept == 25
    expected = [(r["question"], r["response_j"], r["response_k"]) for r in raw]
    assert [(p.prompt[0]["content"], p.chosen, p.rejected) for p in pairs] == expected


def test_prompts_are_distinct_and_keep_their_order():
    path = shared("preference_pairs/dpo_en_demo.json")
    prompts, report = load_prompts("sharegpt-pairs", path)
    pairs, _ = load_pairs("sharegpt-pairs", path)
    distinct = list({json.dumps(p.prompt): p.prompt for p in pairs}.values())  # dicts keep first-insertion order
    assert prompts == distinct and len(prompts) < 300
    assert report.skipped == {"duplicate prompt": 300 - len(prompts)}


# -------------------------------------------------------------------------
# instruction formats on fixtures
# -------------------------------------------------------------------------


def test_dolly_keeps_categories_and_renders_context_as_input():
    examples, report = load_sft("dolly", str(FIXTURES / "dolly_original.jsonl"))
    assert [e.category for e in examples] == ["closed_qa", "open_qa", "brainstorming", "classification", "summarization"]
    assert report.skipped == {"empty response": 1} and report.records == 6
    moon = render_prompt(examples[0].prompt)
    assert "### Instruction:\nWhen did the first crewed Moon landing happen?\n\n### Input:\nApollo 11 was" in moon
    assert moon.startswith("Below is an instruction that describes a task, paired with an input")
    assert "### Input:" not in render_prompt(examples[1].prompt)  # empty context: no Input block


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_parquet_and_csv_give_the_same_examples_as_jsonl(suffix, tmp_path):
    import pandas as pd

    jsonl = FIXTURES / "dolly_original.jsonl"
    frame = pd.read_json(jsonl, lines=True)
    path = tmp_path / f"dolly.{suffix}"
    frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
    assert load_sft("dolly", str(path))[0] == load_sft("dolly", str(jsonl))[0]


def test_csv_cells_are_text(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("instruction,input,output\nAdd 40 and 2.,,42\nWhat does N/A stand for?,,NA\n")
    examples, _ = load_sft("alpaca", str(path))
    assert [e.response for e in examples] == ["42", "NA"] and examples[0].prompt == [message("user", "Add 40 and 2.")]


def test_prompt_response_keeps_a_non_alpaca_prompt_whole(tmp_path):
    path = write_jsonl(tmp_path / "pr.jsonl", [{"prompt": "<|user|> hi <|assistant|>", "response": "hello"}])
    [example], _ = load_sft("prompt-response", path)
    assert example.prompt == [{"role": "user", "content": "<|user|> hi <|assistant|>", "templated": True}]
    assert render_prompt(example.prompt) == "<|user|> hi <|assistant|>"


# -------------------------------------------------------------------------
# OASST: flat rows and nested trees
# -------------------------------------------------------------------------

FLAT, TREES = str(FIXTURES / "oasst2_messages.jsonl"), str(FIXTURES / "oasst2_trees.jsonl")
LEFT_OUT = {"message deleted": 1, "message failed review": 1, "message synthetic": 1,
            "message not in language 'en'": 1, "message under a left-out message": 2}  # fmt: skip


def test_oasst_sft_follows_the_best_ranked_thread():
    examples, report = load_sft("oasst2", FLAT)
    boiling = "What is the boiling point of water at sea level?"
    assert [(len(e.prompt), e.response[:12], e.index) for e in examples] == [
        (1, "At sea level", 2),  # rank 0 beats rank 1; the deleted rank-2 and unranked replies lose
        (3, "Roughly 70 °", 4),  # the rank-0 follow-up, then its only (unranked) reply
        (1, "Red.", 12),  # a single-reply tree still gives a demonstration
        (1, "Ash, Pebble ", 19),  # failed review (rank 0) and synthetic (rank 1) are left out
    ]
    best_reply = message("assistant", "At sea level, water boils at 100 °C (212 °F).")
    assert examples[1].prompt == [message("user", boiling), best_reply, message("user", "And on top of Mount Everest?")]
    assert report.conversations == 3 and report.records == 23
    assert report.skipped == {**LEFT_OUT, "conversation without an assistant reply": 1}


def test_oasst_rankings_order_siblings_by_rank():
    rankings, report = load_rankings("oasst2", FLAT)
    assert [([r.responses[i][:12] for i in r.ranking], r.index) for r in rankings] == [
        (["At sea level", "It boils at "], 0),  # lower rank is better; the null-rank reply is out
        (["Water boils ", "It just does"], 5),  # of two replies tied at rank 0, the first in message order stays
        (["Ash, Pebble ", "Cat.", "Earl Grey, i"], 16),
    ]
    assert report.per_k == {2: 2, 3: 1}
    assert report.skipped == {
        **LEFT_OUT,
        "reply without a rank": 1,
        "reply tied in rank with an earlier sibling": 1,
        "prompt with a single reply (nothing to rank)": 2,
        "prompt without an assistant reply": 1,
    }
    assert all(sorted(r.ranking) == list(range(r.k)) for r in rankings)


def test_oasst_nested_trees_read_like_flat_rows():
    def content(examples):
        return [{k: v for k, v in vars(e).items() if k != "index"} for e in examples]

    for loader in (load_sft, load_rankings):
        flat, flat_report = loader("oasst2", FLAT)
        nested, nested_report = loader("oasst2", TREES)
        assert content(nested) == content(flat)
        assert nested_report.skipped == flat_report.skipped and nested_report.records == 5
    sft, _ = load_sft("oasst2", TREES)
    assert [e.index for e in sft] == [0, 0, 1, 3]  # nested: the tree's record


def test_oasst_options_keep_other_languages_and_synthetic_replies():
    rankings, report = load_rankings("oasst2", TREES, lang=None, drop_synthetic=False)
    assert report.per_k == {2: 3, 4: 1}
    assert "message not in language 'en'" not in report.skipped and "message synthetic" not in report.skipped
    assert rankings[-1].responses[rankings[-1].ranking[0]] == "How about Smokey?"  # synthetic, rank 1
    german, _ = load_sft("oasst2", TREES, lang="de")
    assert [e.response for e in german] == ["Ich habe leider keine Uhr."]


def test_oasst_rows_whose_parent_is_missing_are_counted(tmp_path):
    rows = [json.loads(line) for line in Path(FLAT).read_text().splitlines()]
    # without m3, its six descendants have no way to the root
    path = write_jsonl(tmp_path / "partial.jsonl", [r for r in rows if r["message_id"] != "m3"])
    _, report = load_sft("oasst2", path)
    assert report.skipped["message whose parent is not in the source"] == 6


def test_oasst_with_nothing_left_names_the_reasons():
    with pytest.raises(DataError, match=r"no usable sft in 5 records as oasst2 \(skipped: .*5 × message not in language 'fr'"):
        load_sft("oasst2", TREES, lang="fr")


# -------------------------------------------------------------------------
# preference formats
# -------------------------------------------------------------------------


def test_hh_prompt_is_the_shared_prefix_and_mismatches_are_skipped():
    pairs, report = load_pairs("hh", str(FIXTURES / "hh.jsonl"))
    assert [p.index for p in pairs] == [0, 1]
    assert pairs[1] == PreferencePair(
        prompt=[message("user", "Can you recommend a book?"), message("assistant", "Sure. What kind of stories do you like?"),
                message("user", "Something about the sea.")],  # fmt: skip
        chosen="Try Moby-Dick by Herman Melville, or The Old Man and the Sea by Ernest Hemingway for something shorter.",
        rejected="Books are made of paper.",
        index=1,
    )
    assert report.skipped == {
        "earlier turns differ (not just the final assistant reply)": 1,
        "chosen and rejected are identical": 1,
    }
    assert render_prompt(pairs[1].prompt).endswith("\n\nHuman: Something about the sea.\n\nAssistant:")


@pytest.mark.parametrize(
    "chosen, rejected, reason",
    [
        ([message("user", "a"), message("assistant", "b")], [message("user", "a")], "does not end with an assistant reply"),
        ([message("user", "a"), message("assistant", "b")], [message("user", "x"), message("assistant", "b")], "earlier turns"),
        ([message("user", "a"), message("assistant", "b")], [message("user", "a"), message("assistant", "b")], "identical"),
        ([message("assistant", "b")], [message("assistant", "c")], "no user turn before"),
    ],
)
def test_split_final_replies_skips_what_is_not_one_final_reply_each(chosen, rejected, reason):
    with pytest.raises(Skip, match=reason):
        split_final_replies(chosen, rejected)


def test_pairs_as_strings_and_as_trl_messages():
    plain, report = load_pairs("pairs", str(FIXTURES / "pairs_plain.jsonl"))
    assert plain[0] == PreferencePair([message("user", "What is the capital of France?")], "Paris.", "Lyon.", 0)
    assert report.skipped == {"chosen and rejected are identical": 1}
    chat, _ = load_pairs("pairs", str(FIXTURES / "pairs_conversational.jsonl"))
    assert chat[0].prompt == [message("system", "Answer briefly."), message("user", "What colour is a ripe banana?")]
    assert (chat[0].chosen, chat[0].rejected) == ("Yellow.", "Blue.")
    spider = [message("user", "How many legs does a spider have?")]
    assert chat[2] == PreferencePair(spider, "Eight.", "Six.", 2)  # TRL's implicit prompt: the shared turns


def test_sharegpt_tool_turns_and_unanswerable_conversations_are_skipped(tmp_path):
    turn = lambda who, text: {"from": who, "value": text}  # noqa: E731
    path = write_jsonl(tmp_path / "sg.jsonl", [
        {"conversations": [turn("human", "hi")], "chosen": turn("gpt", "hello"), "rejected": turn("gpt", "no"), "system": "Be kind."},
        {"conversations": [turn("human", "?"), turn("function_call", "f")], "chosen": turn("gpt", "a"), "rejected": turn("gpt", "")},
        {"conversations": [turn("human", "hi"), turn("gpt", "hello")], "chosen": turn("gpt", "a"), "rejected": turn("gpt", "b")},
    ])  # fmt: skip
    pairs, report = load_pairs("sharegpt-pairs", path)
    assert [p.index for p in pairs] == [0]
    assert pairs[0].prompt == [message("system", "Be kind."), message("user", "hi")]  # LLaMA-Factory's optional system column
    assert report.skipped == {"unsupported turn 'from': 'function_call'": 1, "conversation does not end with a human turn": 1}


# -------------------------------------------------------------------------
# bad input: one clear line naming the source, the record and the field
# -------------------------------------------------------------------------


def test_an_empty_file_or_array_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataError, match=r"empty\.jsonl: the file is empty"):
        load("alpaca", str(tmp_path / "empty.jsonl"))
    with pytest.raises(DataError, match=r"empty\.json: no records"):
        load("alpaca", str(tmp_path / "empty.json"))


@pytest.mark.parametrize(
    "records, expected",
    [
        # absent from one record only: Arrow gives it a null
        ([{"instruction": "a", "output": "b"}, {"instruction": "c"}], r"record 1 \(0-based\): missing field 'output' \(it is nu"),
        ([{"instruction": "a", "response": "b"}], r"record 0 \(0-based\): missing field 'output' \(it has: instruction, resp"),
    ],
)
def test_a_missing_field_names_file_record_and_field(records, expected, tmp_path):
    with pytest.raises(DataError, match=r"x\.jsonl: " + expected):
        load("alpaca", write_jsonl(tmp_path / "x.jsonl", records))


def _oasst_row(**changes) -> dict:
    row = {"message_id": "p", "parent_id": None, "role": "prompter", "text": "hi", "lang": "en", "rank": None}
    return {**row, **changes}


@pytest.mark.parametrize(
    "format, records, expected",
    [
        ("oasst2", [_oasst_row(), _oasst_row(message_id="a", parent_id="p", role="assistant", rank="abc")],
         r"record 1 \(0-based\): field 'rank' is 'abc', expected an integer or null"),
        ("oasst2", [_oasst_row(role="user")], r"record 0 \(0-based\): field 'role' is 'user', expected 'prompter' or 'assi"),
        ("oasst2", [{"prompt": {**_oasst_row(), "replies": [_oasst_row(message_id="a", role="assistant", deleted="no")]}}],
         r"record 0 \(0-based\): field 'prompt\.replies\[0\]\.deleted' is 'no', expected true, false or null"),
        ("oasst2", [_oasst_row(), _oasst_row()], r"record 1 \(0-based\): message_id 'p' repeats record 0"),
        ("sharegpt-pairs", [{"conversations": [{"from": "human", "value": "hi"}], "chosen": [{"from": "gpt", "value": "a"}]}],
         r"record 0 \(0-based\): field 'chosen' is \[\{'from': 'gpt', 'value': 'a'\}\], expected an object"),
        ("sharegpt-pairs", [{"conversations": "hi", "chosen": {}, "rejected": {}}],
         r"record 0 \(0-based\): field 'conversations' is 'hi', expected a list of objects"),
        ("pairs", [{"prompt": [["user", "hi"]], "chosen": "a", "rejected": "b"}],
         r"record 0 \(0-based\): field 'prompt\[0\]' is \['user', 'hi'\], expected an object"),
        ("stack-exchange", [{"question": "q", "response_j": 5, "response_k": "b"}],
         r"record 0 \(0-based\): field 'response_j' is 5, expected a string"),
    ],
)  # fmt: skip
def test_a_wrong_type_names_the_record_and_field(format, records, expected, tmp_path):
    with pytest.raises(DataError, match=r"w\.jsonl: " + expected):
        load(format, write_jsonl(tmp_path / "w.jsonl", records))


def test_a_record_that_is_not_an_object_is_named(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}, ["instruction", "c"]]))
    with pytest.raises(DataError, match=r"a\.json: record 1 \(0-based\) is list \[\"instruction\", \"c\"\], expected an object"):
        load("alpaca", str(path))


def test_a_json_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": }\n')
    with pytest.raises(DataError, match=r"s\.jsonl: line 2: invalid JSON \(Expecting value\)"):
        load("alpaca", str(path))


def test_an_unknown_format_lists_the_valid_ones():
    valid = r"valid: alpaca, dolly, prompt-response, oasst2, hh, pairs, sharegpt-pairs, stack-exchange$"
    with pytest.raises(UsageError, match=r"unknown format 'alpacca' \(did you mean 'alpaca'\?\); " + valid):
        load("alpacca", "whatever.json")


def test_a_kind_the_format_does_not_yield_is_an_error():
    with pytest.raises(DataError, match=r"format 'alpaca' yields sft, prompts, not 'rankings'"):
        load_rankings("alpaca", str(FIXTURES / "dolly_original.jsonl"))


@pytest.mark.parametrize(
    "source, expected",
    [
        ("no/such/file.jsonl", r"^no/such/file\.jsonl: no such file$"),
        (str(FIXTURES), r"cannot read it as a dataset folder"),  # a folder of mixed formats
        ("nobody/no-such-dataset", r"^nobody/no-such-dataset: no such file, and it could not be loaded as a Hugging Face Hub "
                                   r"dataset \(Couldn't reach 'nobody/no-such-dataset' on the Hub \(OfflineModeIsEnabled\)\)$"),
    ],
)
def test_a_source_that_cannot_be_opened_is_one_line(source, expected):
    with pytest.raises(DataError, match=expected) as caught:
        load("alpaca", source)
    assert "\n" not in str(caught.value)


def test_an_unknown_file_type_is_named(tmp_path):
    (tmp_path / "data.txt").write_text("hello\n")
    with pytest.raises(DataError, match=r"data\.txt: cannot tell the file type from its name; expected \.json, \.jsonl"):
        load("alpaca", str(tmp_path / "data.txt"))


def test_zero_usable_examples_name_the_skip_reasons(tmp_path):
    same = {"prompt": "p", "chosen": "x", "rejected": "x"}
    with pytest.raises(DataError, match=r"same\.jsonl: no usable pairs in 2 records as pairs \(skipped: 2 × chosen and rej"):
        load("pairs", write_jsonl(tmp_path / "same.jsonl", [same, same]))


# -------------------------------------------------------------------------
# rendering
# -------------------------------------------------------------------------


def test_plain_templates_alpaca_for_one_turn_hh_for_more():
    assert render_prompt([message("user", "Name a colour.")]) == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nName a colour.\n\n### Response:\n"
    )
    chat = [message("system", "Be brief."), message("user", "hi"), message("assistant", "hello"), message("user", "bye")]
    assert render_prompt(chat) == "Be brief.\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant:"


def test_a_chat_template_replaces_the_plain_one():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    examples, _ = load_sft("dolly", str(FIXTURES / "dolly_original.jsonl"))
    assert render_prompt(examples[0].prompt, tokenizer).startswith("Below is an instruction")  # no template yet
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    assert render_prompt(examples[0].prompt, tokenizer) == f"<|user|>{examples[0].prompt[0]['content']}\n<|assistant|>"
    assert "Apollo 11" in examples[0].prompt[0]["content"]  # the Dolly context reaches the chat model too


# -------------------------------------------------------------------------
# describe and the CLI
# -------------------------------------------------------------------------


def test_describe_counts_kinds_and_shows_rendered_examples():
    text = describe("oasst2", TREES, n=1)
    assert text.splitlines()[:3] == [
        f"{TREES}: 5 records read as oasst2",
        "sft: 4 examples from 3 conversations; skipped: 2 × message under a left-out message, 1 × message deleted, "
        "1 × message not in language 'en', 1 × message failed review, 1 × message synthetic, "
        "1 × conversation without an assistant reply",
        "rankings: 3 (by K: K=2: 2, K=3: 1); skipped: 2 × message under a left-out message, "
        "2 × prompt with a single reply (nothing to rank), 1 × message deleted, 1 × message not in language 'en', "
        "1 × message failed review, 1 × message synthetic, 1 × reply without a rank, "
        "1 × reply tied in rank with an earlier sibling, 1 × prompt without an assistant reply",
    ]
    assert "── sft 1 (record 0) ──" in text and "── rankings 1 (record 0) ──" in text
    assert "### Instruction:\n    │ What is the boiling point" in text


def test_describe_truncates_long_responses(tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", [{"instruction": "Count.", "output": "x" * 1000}])
    text = describe("alpaca", path, kinds=["sft", "prompts"])
    assert "sft: 1; skipped: none" in text and "prompts: 1; skipped: none" in text
    assert "x" * 300 + "… [+700 chars]" in text and "x" * 301 not in text


def test_cli_show_and_formats(capsys):
    assert data_command(["show", "--format", "dolly", str(FIXTURES / "dolly_original.jsonl"), "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "sft: 5; skipped: 1 × empty response" in out and "category: closed_qa" in out and "── sft 2" not in out
    assert data_command(["formats"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(FORMATS)


def test_cli_wires_into_plain_argparse_subcommands(capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="harness")
    add_data_command(parser.add_subparsers(dest="command"))
    argv = ["data", "show", "--format", "oasst2", "--lang", "all", "--keep-synthetic", "--kind", "rankings", TREES]
    args = parser.parse_args(argv)
    assert args.func is cmd_data and cmd_data(args) == 0
    assert "rankings: 4 (by K: K=2: 3, K=4: 1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["show", "--format", "dolyl", "x.jsonl"], "unknown format 'dolyl' (did you mean 'dolly'?)"),
        (["show", "--format", "dolly", "-n", "two", "x.jsonl"], "argument -n: expected a non-negative integer, got 'two'"),
        (["show", "--format", "dolly", "x.jsonl"], "x.jsonl: no such file"),
    ],
)
def test_cli_mistakes_are_one_line_usage_errors(argv, expected):
    with pytest.raises(UsageError) as caught:
        data_command(argv)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_package_docstring_lists_every_format_with_its_kinds():
    import harness.data

    table = dict(re.findall(r"^(\S+)\s{2,}((?:\w+, )*\w+)\s{2,}", harness.data.__doc__, re.MULTILINE))
    table.pop("format")  # the header row
    assert table == {name: ", ".join(fmt.kinds) for name, fmt in FORMATS.items()}


def test_examples_are_typed():
    sft, _ = load("dolly", str(FIXTURES / "dolly_original.jsonl"))
    rankings, _ = load("oasst2", TREES, "rankings")
    assert all(isinstance(e, SFTExample) for e in sft) and all(isinstance(r, Ranking) for r in rankings)
