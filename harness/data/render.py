"""Prompt messages → the text a model is given.

With a tokenizer that has a chat template, the template decides::

    tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

(only ``role`` and ``content`` are passed). Without one, a plain template:

* **one user message** → the Stanford Alpaca prompt, exactly as in Alpaca's ``text`` field::

      Below is an instruction that describes a task. Write a response that appropriately completes the request.

      ### Instruction:
      {instruction}

      ### Response:

  and, when the message came from a record with a non-empty Alpaca ``input`` (or Dolly
  ``context``), which the adapters keep as the message's ``"instruction"`` and ``"input"`` keys::

      Below is an instruction that describes a task, paired with an input that provides further context. Write a response …

      ### Instruction:
      {instruction}

      ### Input:
      {input}

      ### Response:

  A message marked ``"templated": True`` (a ``prompt-response`` prompt that was already a
  finished prompt but not the Alpaca one) is used as it is.
* **anything else** → an Anthropic HH transcript ending with the assistant cue; a system
  message comes first as plain text::

      {system}

      Human: {user}

      Assistant: {assistant}

      Human: {user}

      Assistant:
"""

from __future__ import annotations

import re

from harness.data.types import Message, Messages

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
ALPACA_PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_SPEAKER = {"user": HUMAN, "assistant": ASSISTANT}

_ALPACA_PATTERN = re.compile(
    re.escape(ALPACA_PROMPT).replace(re.escape("{instruction}"), "(?P<instruction>.*)") + r"\Z", re.DOTALL
)
_ALPACA_WITH_INPUT_PATTERN = re.compile(
    re.escape(ALPACA_PROMPT_WITH_INPUT)
    .replace(re.escape("{instruction}"), "(?P<instruction>.*?)")
    .replace(re.escape("{input}"), "(?P<input>.*)")
    + r"\Z",
    re.DOTALL,
)


def user_message(instruction: str, input: str | None = None) -> Message:
    """The user turn of an instruction record; a non-empty ``input`` joins the content after a
    blank line and is also kept apart, so that the plain template can give it its own block."""
    if not input:
        return {"role": "user", "content": instruction}
    return {"role": "user", "content": f"{instruction}\n\n{input}", "instruction": instruction, "input": input}


def parse_alpaca_prompt(prompt: str) -> Message | None:
    """The user message that :func:`render_prompt` renders back to ``prompt``, or ``None`` when
    ``prompt`` is not one of the two Alpaca templates."""
    for pattern in (_ALPACA_PATTERN, _ALPACA_WITH_INPUT_PATTERN):
        match = pattern.match(prompt)
        if match:
            return user_message(match["instruction"], match.groupdict().get("input"))
    return None


def render_prompt(messages: Messages, tokenizer=None) -> str:
    """``messages`` as a prompt string: the tokenizer's chat template if it has one, else the
    plain templates of this module's docstring."""
    if getattr(tokenizer, "chat_template", None):
        chat = [{"role": m["role"], "content": m["content"]} for m in messages]
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    if len(messages) == 1 and messages[0]["role"] == "user":
        only = messages[0]
        if only.get("templated"):
            return only["content"]
        if only.get("input"):
            return ALPACA_PROMPT_WITH_INPUT.format(instruction=only["instruction"], input=only["input"])
        return ALPACA_PROMPT.format(instruction=only["content"])
    return "".join(_hh_turn(m) for m in messages) + ASSISTANT


def _hh_turn(message: Message) -> str:
    role = message["role"]
    if role == "system":
        return message["content"]
    speaker = _HH_SPEAKER.get(role, f"\n\n{role.capitalize()}:")  # e.g. a tool turn: "\n\nTool:"
    return f"{speaker} {message['content']}"
