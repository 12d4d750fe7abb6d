"""Preference records → :class:`PreferencePair`: Anthropic HH, plain/TRL pairs, LLaMA-Factory
ShareGPT pairs and Stack Exchange."""

from __future__ import annotations

from harness.data.conversation import parse_hh_transcript, split_final_replies
from harness.data.errors import Skip
from harness.data.records import Record
from harness.data.types import Messages, PreferencePair

#: LLaMA-Factory's ShareGPT speaker tags; its tool tags (``function_call``, ``observation``) are skipped
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def _pair(record: Record, prompt: Messages, chosen: str, rejected: str) -> PreferencePair:
    if chosen == rejected:
        raise Skip("chosen and rejected are identical")
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, index=record.index)


def hh(record: Record) -> PreferencePair:
    """``{"chosen", "rejected"}``, two whole HH transcripts: the shared turns are the prompt,
    the final assistant replies the pair (see :func:`split_final_replies` for what is skipped)."""
    chosen, rejected = parse_hh_transcript(record.text("chosen")), parse_hh_transcript(record.text("rejected"))
    return _pair(record, *split_final_replies(chosen, rejected))


def _single_reply(record: Record, name: str) -> str:
    """A reply given as a string, or as TRL's conversational list of one assistant message."""
    if not isinstance(record.value(name), list):
        return record.text(name)
    messages = record.messages(name)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise Skip(f"'{name}' is not a single assistant message")
    return messages[0]["content"]


def plain(record: Record) -> PreferencePair:
    """``{"prompt", "chosen", "rejected"}`` as strings (the prompt becomes one user message) or
    as TRL's conversational message lists; without ``prompt``, TRL's implicit-prompt form (two
    whole conversations) is split like HH."""
    if not record.has("prompt") and isinstance(record.value("chosen"), list):
        return _pair(record, *split_final_replies(record.messages("chosen"), record.messages("rejected")))
    if isinstance(record.value("prompt"), list):
        prompt = record.messages("prompt")
    else:
        prompt = [{"role": "user", "content": record.text("prompt")}]
    return _pair(record, prompt, _single_reply(record, "chosen"), _single_reply(record, "rejected"))


def sharegpt(record: Record) -> PreferencePair:
    """``{"conversations": [{"from", "value"}, ...], "chosen": {"from", "value"}, "rejected": {...}}``
    (LLaMA-Factory ``ranking: true, formatting: sharegpt``; an optional ``system`` column comes first)."""
    system = record.optional_text("system")
    prompt = [{"role": "system", "content": system}] if system else []
    for turn in record.children("conversations", required=True):
        tag = turn.text("from")
        if tag not in SHAREGPT_ROLES:
            raise Skip(f"unsupported turn 'from': {tag!r}")
        prompt.append({"role": SHAREGPT_ROLES[tag], "content": turn.text("value")})
    if not prompt or prompt[-1]["role"] != "user":
        raise Skip("conversation does not end with a human turn")
    return _pair(record, prompt, record.child("chosen").text("value"), record.child("rejected").text("value"))


def stack_exchange(record: Record) -> PreferencePair:
    """``{"question", "response_j", "response_k"}`` (lvwerra/stack-exchange-paired): ``response_j`` is preferred."""
    prompt = [{"role": "user", "content": record.text("question")}]
    return _pair(record, prompt, record.text("response_j"), record.text("response_k"))
