"""Instruction-following records → :class:`SFTExample`: Alpaca, Dolly and prompt/response."""

from __future__ import annotations

from harness.data.errors import Skip
from harness.data.records import Record
from harness.data.render import parse_alpaca_prompt, user_message
from harness.data.types import Message, SFTExample


def _example(record: Record, prompt: Message, response: str, category: str | None = None) -> SFTExample:
    if not prompt["content"].strip():
        raise Skip("empty instruction")
    if not response.strip():
        raise Skip("empty response")
    return SFTExample(prompt=[prompt], response=response, category=category, index=record.index)


def alpaca(record: Record) -> SFTExample:
    """``{"instruction", "input", "output"}`` (Stanford Alpaca; ``input`` may be empty or absent)."""
    return _example(record, user_message(record.text("instruction"), record.optional_text("input")), record.text("output"))


def dolly(record: Record) -> SFTExample:
    """``{"instruction", "context", "response", "category"}`` (databricks-dolly-15k): the
    context plays Alpaca's input; the category is kept for per-category evaluation."""
    prompt = user_message(record.text("instruction"), record.optional_text("context"))
    return _example(record, prompt, record.text("response"), record.optional_text("category"))


def prompt_response(record: Record) -> SFTExample:
    """``{"prompt", "response"}`` with the prompt already templated (mosaicml ``dolly_hhrlhf``):
    an Alpaca prompt is parsed back into its instruction (and input); any other prompt is kept
    whole as one user message marked ``templated``, which the plain renderer leaves as it is."""
    prompt = record.text("prompt")
    message = parse_alpaca_prompt(prompt) or {"role": "user", "content": prompt, "templated": True}
    return _example(record, message, record.text("response"))
