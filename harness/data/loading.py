"""Load a source in a format as one kind of example: ``(examples, report)``, never a silent empty set."""

from __future__ import annotations

import json

from harness.data.errors import DataError
from harness.data.formats import DataFormat, get_format
from harness.data.records import Record
from harness.data.source import read_records
from harness.data.types import (
    PAIRS,
    PROMPTS,
    RANKINGS,
    SFT,
    Example,
    LoadOptions,
    LoadReport,
    Messages,
    PreferencePair,
    Ranking,
    SFTExample,
)


def unique_prompts(examples: list[Example], report: LoadReport) -> list[Messages]:
    """The examples' prompts, first occurrence kept, in order; repeats counted as "duplicate prompt"."""
    seen: set[str] = set()
    prompts = []
    for example in examples:
        key = json.dumps(example.prompt, sort_keys=True)
        if key in seen:
            report.skip("duplicate prompt")
        else:
            seen.add(key)
            prompts.append(example.prompt)
    return prompts


def convert(
    fmt: DataFormat, kind: str, records: list[Record], label: str, options: LoadOptions
) -> tuple[list[Example], LoadReport]:
    """``records`` as ``kind`` examples, possibly none (the caller decides whether that is an error)."""
    fmt.check_kind(kind)
    report = LoadReport(source=label, format=fmt.name, kind=kind, records=len(records))
    if kind == PROMPTS:
        examples = unique_prompts(fmt.adapters[fmt.primary_kind](records, options, report), report)
    else:
        examples = fmt.adapters[kind](records, options, report)
    report.kept = len(examples)
    if kind == RANKINGS:
        report.per_k.update(len(ranking.responses) for ranking in examples)
    if kind == SFT and report.conversations is None:
        report.conversations = len(examples)
    return examples, report


def load(
    format: str,
    source: str,
    kind: str | None = None,
    *,
    split: str = "train",
    lang: str | None = "en",
    drop_synthetic: bool = True,
) -> tuple[list[Example], LoadReport]:
    """``source`` (a local json/jsonl/parquet/csv file or a Hub id) read as ``format`` and turned
    into ``kind`` examples (default: the format's own kind). Raises :class:`DataError` for
    unreadable input, and when no example is left, naming why each record was skipped."""
    fmt = get_format(format)
    kind = kind or fmt.primary_kind
    fmt.check_kind(kind)  # before reading: a wrong kind is known without the data
    records, label = read_records(source, split)
    examples, report = convert(fmt, kind, records, label, LoadOptions(lang=lang, drop_synthetic=drop_synthetic))
    if not examples:
        why = report.skipped_summary()
        raise DataError(f"{label}: no usable {kind} in {report.records} records as {fmt.name} (skipped: {why})")
    return examples, report


def load_sft(format: str, source: str, **options) -> tuple[list[SFTExample], LoadReport]:
    """Demonstrations (``alpaca``, ``dolly``, ``prompt-response``, ``oasst2``)."""
    return load(format, source, SFT, **options)


def load_pairs(format: str, source: str, **options) -> tuple[list[PreferencePair], LoadReport]:
    """Preference pairs (``hh``, ``pairs``, ``sharegpt-pairs``, ``stack-exchange``)."""
    return load(format, source, PAIRS, **options)


def load_rankings(format: str, source: str, **options) -> tuple[list[Ranking], LoadReport]:
    """K-wise rankings (``oasst2``)."""
    return load(format, source, RANKINGS, **options)


def load_prompts(format: str, source: str, **options) -> tuple[list[Messages], LoadReport]:
    """The distinct prompts of any format, in order (an eval prompt set)."""
    return load(format, source, PROMPTS, **options)
