"""Dataset adapters: the field's public formats → typed examples.

A source is a local json/jsonl/parquet/csv file or a Hugging Face Hub id, opened with
``datasets.load_dataset`` (:mod:`harness.data.source`). A **format** (:data:`FORMATS`) turns its
records into one or more **kinds** of example:

=================  ======================  ==================================================
format             kinds                   records
=================  ======================  ==================================================
alpaca             sft, prompts            ``instruction``, ``input``, ``output``
dolly              sft, prompts            ``instruction``, ``context``, ``response``, ``category``
prompt-response    sft, prompts            ``prompt`` (templated), ``response``
oasst2             sft, rankings, prompts  OASST message rows or nested trees
hh                 pairs, prompts          ``chosen``/``rejected`` HH transcripts
pairs              pairs, prompts          ``prompt``/``chosen``/``rejected``: strings or TRL messages
sharegpt-pairs     pairs, prompts          LLaMA-Factory ``conversations``, ``chosen``, ``rejected``
stack-exchange     pairs, prompts          ``question``, ``response_j`` (preferred), ``response_k``
=================  ======================  ==================================================

Every loader returns ``(examples, report)``; the :class:`LoadReport` counts records read,
examples kept and records skipped by reason (and rankings by K). A record that is malformed
(a missing or mistyped field) is a :class:`DataError` naming the file, the record (0-based) and
the field; a well-formed record that yields nothing is skipped and counted; no usable example
at all is an error that lists the skip reasons.

Rules worth knowing (details in each module):

* **Templates** (:mod:`harness.data.render`): a tokenizer's chat template when it has one;
  otherwise one user turn → the Alpaca prompt (with its ``### Input:`` block when the record had
  an input or Dolly context), more turns → an HH transcript ending in ``"\\n\\nAssistant:"``.
* **HH** (:func:`harness.data.conversation.split_final_replies`): the longest common prefix of
  turns is the prompt; a pair is kept only when each side continues it with exactly one
  assistant turn, else skipped as "earlier turns differ".
* **OASST** (:mod:`harness.data.oasst`): best-ranked thread for SFT; rankings of sibling
  assistant replies by rank, null ranks left out, a tied rank kept for its first reply only.
"""

from harness.data.describe import describe
from harness.data.errors import DataError, Skip
from harness.data.formats import FORMATS, DataFormat, get_format
from harness.data.loading import load, load_pairs, load_prompts, load_rankings, load_sft
from harness.data.render import render_prompt
from harness.data.types import KINDS, LoadOptions, LoadReport, Message, Messages, PreferencePair, Ranking, SFTExample

__all__ = [
    "FORMATS",
    "KINDS",
    "DataError",
    "DataFormat",
    "LoadOptions",
    "LoadReport",
    "Message",
    "Messages",
    "PreferencePair",
    "Ranking",
    "SFTExample",
    "Skip",
    "describe",
    "get_format",
    "load",
    "load_pairs",
    "load_prompts",
    "load_rankings",
    "load_sft",
    "render_prompt",
]
