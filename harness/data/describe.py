"""A human-readable look at a source in a format: counts, skip reasons and a few rendered examples."""

from __future__ import annotations

import textwrap

from harness.data.formats import get_format
from harness.data.loading import convert
from harness.data.render import render_prompt
from harness.data.source import read_records
from harness.data.types import PROMPTS, RANKINGS, SFT, Example, LoadOptions, LoadReport, PreferencePair, Ranking, SFTExample

PROMPT_CHARS, RESPONSE_CHARS = 1200, 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [+{len(text) - limit} chars]"


def _block(title: str, text: str, limit: int) -> list[str]:
    return [f"  {title}:", textwrap.indent(_clip(text, limit), "    │ ", predicate=lambda _: True)]


def _counts(report: LoadReport) -> str:
    line = f"{report.kind}: {report.kept}"
    if report.kind == SFT and report.conversations != report.kept:
        line += f" examples from {report.conversations} conversations"
    if report.kind == RANKINGS and report.per_k:
        line += " (by K: " + ", ".join(f"K={k}: {n}" for k, n in sorted(report.per_k.items())) + ")"
    return f"{line}; skipped: {report.skipped_summary()}"


def _render(kind: str, number: int, example: Example) -> list[str]:
    if kind == PROMPTS:
        return [f"── prompt {number} ──", *_block("prompt", render_prompt(example), PROMPT_CHARS)]
    lines = [f"── {kind} {number} (record {example.index}) ──"]
    lines += _block("prompt", render_prompt(example.prompt), PROMPT_CHARS)
    if isinstance(example, SFTExample):
        if example.category:
            lines.append(f"  category: {example.category}")
        lines += _block("response", example.response, RESPONSE_CHARS)
    elif isinstance(example, PreferencePair):
        lines += _block("chosen", example.chosen, RESPONSE_CHARS) + _block("rejected", example.rejected, RESPONSE_CHARS)
    elif isinstance(example, Ranking):
        for place, i in enumerate(example.ranking, start=1):
            lines += _block(f"#{place}", example.responses[i], RESPONSE_CHARS)
    return lines


def describe(
    format: str,
    source: str,
    *,
    kinds: list[str] | None = None,
    n: int = 3,
    split: str = "train",
    lang: str | None = "en",
    drop_synthetic: bool = True,
) -> str:
    """Counts per kind (default: every kind the format yields but ``prompts``), what was skipped
    and why, and the first ``n`` examples of each kind, prompts rendered with the plain template."""
    fmt = get_format(format)
    kinds = kinds or [kind for kind in fmt.kinds if kind != PROMPTS]
    for kind in kinds:
        fmt.check_kind(kind)
    records, label = read_records(source, split)
    options = LoadOptions(lang=lang, drop_synthetic=drop_synthetic)
    lines = [f"{label}: {len(records)} records read as {fmt.name}"]
    samples = []
    for kind in kinds:
        examples, report = convert(fmt, kind, records, label, options)
        lines.append(_counts(report))
        samples += [(kind, number, example) for number, example in enumerate(examples[:n], start=1)]
    for kind, number, example in samples:
        lines += ["", *_render(kind, number, example)]
    return "\n".join(lines)
