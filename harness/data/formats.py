"""The format registry: a name → the adapters that turn its records into each kind of example."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.data import instructions, oasst, pairs
from harness.data.errors import DataError, Skip
from harness.data.records import Record
from harness.data.types import PAIRS, PROMPTS, RANKINGS, SFT, Example, LoadOptions, LoadReport
from harness.errors import did_you_mean

#: records → examples of one kind; counts what it leaves out in the report
Adapter = Callable[[list[Record], LoadOptions, LoadReport], list[Example]]


def per_record(convert: Callable[[Record], Example]) -> Adapter:
    """An adapter from a one-record conversion that may :class:`Skip`."""

    def adapt(records: list[Record], options: LoadOptions, report: LoadReport) -> list[Example]:
        examples = []
        for record in records:
            try:
                examples.append(convert(record))
            except Skip as skip:
                report.skip(skip.reason)
        return examples

    adapt.__doc__ = convert.__doc__
    return adapt


@dataclass(frozen=True)
class DataFormat:
    name: str
    description: str
    #: kind → adapter; the first kind is the format's own, the one ``prompts`` are taken from
    adapters: dict[str, Adapter]

    @property
    def kinds(self) -> tuple[str, ...]:
        """What this format yields: its adapters' kinds, then ``prompts``."""
        return (*self.adapters, PROMPTS)

    @property
    def primary_kind(self) -> str:
        return next(iter(self.adapters))

    def check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise DataError(f"format {self.name!r} yields {', '.join(self.kinds)}, not {kind!r}")


FORMATS: dict[str, DataFormat] = {
    f.name: f
    for f in [
        DataFormat("alpaca", "Stanford Alpaca {instruction, input, output}", {SFT: per_record(instructions.alpaca)}),
        DataFormat("dolly", "databricks-dolly-15k {instruction, context, response, category}",
                   {SFT: per_record(instructions.dolly)}),
        DataFormat("prompt-response", "templated {prompt, response} (mosaicml dolly_hhrlhf)",
                   {SFT: per_record(instructions.prompt_response)}),
        DataFormat("oasst2", "OpenAssistant message rows or trees", {SFT: oasst.sft, RANKINGS: oasst.rankings}),
        DataFormat("hh", "Anthropic HH-RLHF {chosen, rejected} transcripts", {PAIRS: per_record(pairs.hh)}),
        DataFormat("pairs", "{prompt, chosen, rejected}: strings or TRL message lists", {PAIRS: per_record(pairs.plain)}),
        DataFormat("sharegpt-pairs", "LLaMA-Factory sharegpt ranking {conversations, chosen, rejected}",
                   {PAIRS: per_record(pairs.sharegpt)}),
        DataFormat("stack-exchange", "{question, response_j (preferred), response_k}",
                   {PAIRS: per_record(pairs.stack_exchange)}),
    ]
}  # fmt: skip


def get_format(name: str) -> DataFormat:
    """The format called ``name``; an unknown name lists the valid ones."""
    if name not in FORMATS:
        raise DataError(f"unknown format {name!r}{did_you_mean(name, FORMATS)}; valid: {', '.join(FORMATS)}")
    return FORMATS[name]
