"""A dataset source — a local json/jsonl/parquet/csv file (or folder) or a Hugging Face Hub id —
opened with ``datasets.load_dataset``, every failure turned into one :class:`DataError` line
that names the source.

Local files: ``load_dataset("json" | "parquet" | "csv", data_files=PATH, split=SPLIT)`` (a local
file's only split is ``train``; slices such as ``train[:100]`` work; ``.gz`` and other compressed
files are read too). CSV cells are read as text (an empty cell is ``""``), so CSV suits the
text-only formats; OASST wants JSON or Parquet. Anything that is not an existing path is tried as
a Hub id, ``load_dataset(ID, split=SPLIT)``; without network (or with ``HF_HUB_OFFLINE=1``) only
datasets already in the local Hugging Face cache load.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from harness.data.errors import DataError
from harness.data.records import Record

if TYPE_CHECKING:
    import datasets

#: file suffix (before an optional ``.gz``/``.bz2``/``.xz``/``.zst``) → ``datasets`` builder
BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst"}
#: a source ending in one of these is meant as a file, so a missing one is not tried on the Hub
_FILE_LIKE = tuple(BUILDERS) + tuple(s + c for s in BUILDERS for c in _COMPRESSIONS)


def _builder(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    builder = BUILDERS.get(suffixes[-1] if suffixes else "")
    if builder is None:
        raise DataError(f"{path}: cannot tell the file type from its name; expected {', '.join(BUILDERS)} (or compressed)")
    return builder


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars or error logs from ``datasets``: its failures reach the user as our one line."""
    import datasets

    bars_were_off, level = datasets.are_progress_bars_disabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        if not bars_were_off:
            datasets.enable_progress_bars()


def _root_cause(exc: BaseException) -> str:
    """The innermost message: ``datasets`` wraps a JSON syntax error in a generic one."""
    messages = []
    while exc is not None and len(messages) < 10:
        if str(exc):
            messages.append(str(exc).strip().splitlines()[0])
        exc = exc.__cause__ or exc.__context__
    return messages[-1] if messages else "unknown error"


def _json_diagnosis(path: Path) -> str | None:
    """Where a JSON/JSON Lines file that ``datasets`` could not read goes wrong, by record
    (Arrow's own message counts rows per block and calls a non-object record a column change)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        records = json.loads(text)
        if not isinstance(records, list):
            records = [records]
    except json.JSONDecodeError as whole_file_error:
        if text.lstrip().startswith("["):
            return f"invalid JSON at line {whole_file_error.lineno}: {whole_file_error.msg}"
        records = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    return f"line {line_number}: invalid JSON ({exc.msg})"
    if not records:
        return "no records"
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            return f"record {index} (0-based) is {type(record).__name__} {json.dumps(record)[:40]}, expected an object"
    return None


def _csv_text_features(path: Path):
    """Every CSV column as text: CSV has no types, and pandas would turn a column of "42"s into integers
    (and, without ``keep_default_na=False``, an empty cell or the answer "NA" into null)."""
    import datasets
    import fsspec

    with fsspec.open(str(path), "rt", compression="infer", newline="", encoding="utf-8-sig") as file:
        header = next(csv.reader(file), [])
    return datasets.Features({name: datasets.Value("string") for name in header})


def check_utf8(path: Path, label: str, chunk_bytes: int = 1 << 20) -> None:
    """A :class:`DataError` naming the line and byte offset of the first byte of ``path`` (a
    JSON or CSV file, decompressed as its name says) that is not UTF-8. Arrow reads such bytes
    without a word and fails only when a row is taken out; one streaming pass finds them first."""
    import fsspec

    offset, line, carry = 0, 1, b""
    with fsspec.open(str(path), "rb", compression="infer") as file:
        while True:
            chunk = file.read(chunk_bytes)
            data = carry + chunk
            try:
                data.decode("utf-8")
                good, carry = data, b""
            except UnicodeDecodeError as exc:
                cut_short = exc.reason == "unexpected end of data" and chunk  # a character split across chunks
                if not cut_short:
                    line += data[: exc.start].count(b"\n")
                    raise DataError(f"{label}: line {line}, byte offset {offset + exc.start}: byte 0x{data[exc.start]:02x} is not "
                                    "UTF-8 (save the file as UTF-8)") from None  # fmt: skip
                good, carry = data[: exc.start], data[exc.start :]
            line += good.count(b"\n")
            offset += len(good)
            if not chunk:
                return


def _reading_error(source: str, path: Path, builder: str | None, exc: Exception) -> DataError:
    if not path.exists():  # the Hub's own outer message says why best ("Couldn't reach 'x' on the Hub (OfflineModeIsEnabled)")
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else _root_cause(exc)
        return DataError(f"{source}: no such file, and it could not be loaded as a Hugging Face Hub dataset ({why})")
    if builder == "json" and path.suffix.lower() in (".json", ".jsonl"):
        return DataError(f"{source}: {_json_diagnosis(path) or _root_cause(exc)}")
    return DataError(f"{source}: cannot read it as {builder or 'a dataset folder'}: {_root_cause(exc)}")


def open_source(source: str, split: str = "train") -> tuple[datasets.Dataset, str]:
    """``(dataset, label)``: the ``datasets.Dataset`` of ``source`` and the name errors use for it."""
    import datasets

    path = Path(source).expanduser()
    if not path.exists() and source.lower().endswith(_FILE_LIKE):
        raise DataError(f"{source}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty (no records)")
    builder = _builder(path) if path.is_file() else None
    label = source if path.exists() else f"{source} (split {split})"
    if builder in ("json", "csv"):
        check_utf8(path, label)
    with _quiet_datasets():
        try:
            if builder:
                as_text = {"features": _csv_text_features(path), "keep_default_na": False} if builder == "csv" else {}
                dataset = datasets.load_dataset(builder, data_files=str(path), split=split, **as_text)
            else:  # a folder of data files, or a Hub id
                dataset = datasets.load_dataset(str(path) if path.exists() else source, split=split)
        except Exception as exc:  # noqa: BLE001 — every reading failure is the input's, reported as one line
            raise _reading_error(source, path, builder, exc) from exc
    if not isinstance(dataset, datasets.Dataset):
        raise DataError(f"{label}: expected one split, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise DataError(f"{label}: no records")
    return dataset, label


def read_records(source: str, split: str = "train") -> tuple[list[Record], str]:
    """Every record of ``source`` as a :class:`Record`, and the source's label."""
    dataset, label = open_source(source, split)
    return [Record(label, index, row) for index, row in enumerate(dataset)], label
