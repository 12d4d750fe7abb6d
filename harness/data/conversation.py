"""Conversations as message lists: HH transcripts parsed into turns, and a preference pair
recovered from two full conversations that share their beginning."""

from __future__ import annotations

import re

from harness.data.errors import Skip
from harness.data.types import Messages

_HH_SPEAKER = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}


def parse_hh_transcript(text: str) -> Messages:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` → ``[{"role": "user", ...}, {"role": "assistant", ...}]``.
    A turn runs to the next ``\\n\\nHuman:``/``\\n\\nAssistant:``; its content is stripped."""
    head, *rest = _HH_SPEAKER.split(text)
    if head.strip():
        raise Skip("transcript does not start with '\\n\\nHuman:'")
    return [{"role": _HH_ROLE[speaker], "content": body.strip()} for speaker, body in zip(rest[::2], rest[1::2])]


def split_final_replies(chosen: Messages, rejected: Messages) -> tuple[Messages, str, str]:
    """``(prompt, chosen reply, rejected reply)`` from two whole conversations.

    The prompt is their longest common prefix of turns. The pair is kept only when what follows
    it is exactly one assistant turn on each side, after a user turn; anything else (the earlier
    turns differ, a side ends on a user turn, the two are identical) is a :class:`Skip`.
    """
    if not chosen or not rejected:
        raise Skip("empty conversation")
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise Skip("conversation does not end with an assistant reply")
    if chosen == rejected:
        raise Skip("chosen and rejected are identical")
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if len(chosen) != shared + 1 or len(rejected) != shared + 1:
        raise Skip("earlier turns differ (not just the final assistant reply)")
    prompt = chosen[:shared]
    if not prompt or prompt[-1]["role"] != "user":
        raise Skip("no user turn before the final replies")
    return prompt, chosen[-1]["content"], rejected[-1]["content"]
