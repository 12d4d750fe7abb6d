"""Typed access to one source record: every mistake names the source, the record (0-based) and the field.

Records come from ``datasets``, so a value is what Arrow gives back: ``None`` for a field that
this record lacks but others have (JSON), Python lists and dicts for nested values, and anything
at all in a column of mixed types. So "missing" covers absent and null alike.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from harness.data.errors import DataError
from harness.data.types import Messages


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Record:
    """One record (or a nested object inside one, at ``path``) of ``source``."""

    def __init__(self, source: str, index: int, data: Any, path: str = ""):
        self.source = source
        self.index = index
        self.data = data
        self.path = path
        if not isinstance(data, Mapping):
            raise self.error(f"{self._what()} is {_show(data)}, expected an object")

    def _what(self) -> str:
        return f"field '{self.path}'" if self.path else "the record"

    def _field(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, message: str) -> DataError:
        return DataError(f"{self.source}: record {self.index} (0-based): {message}")

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not null."""
        return self.data.get(name) is not None

    def value(self, name: str) -> Any:
        """The value of a required field (present and not null)."""
        if name not in self.data:
            raise self.error(f"missing field '{self._field(name)}' (it has: {', '.join(map(str, self.data)) or 'no fields'})")
        value = self.data[name]
        if value is None:
            raise self.error(f"missing field '{self._field(name)}' (it is null)")
        return value

    def invalid(self, name: str, value: Any, expected: str) -> DataError:
        return self.error(f"field '{self._field(name)}' is {_show(value)}, expected {expected}")

    def text(self, name: str) -> str:
        value = self.value(name)
        if not isinstance(value, str):
            raise self.invalid(name, value, "a string")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise self.invalid(name, value, "a string or null")
        return value

    def optional_int(self, name: str) -> int | None:
        """An integer or null; an integral float counts (pandas stores ints with nulls as floats, NaN as null)."""
        value = self.data.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(name, value, "an integer or null")
        return value

    def optional_flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.invalid(name, value, "true, false or null")
        return value

    def child(self, name: str) -> Record:
        """A required nested object."""
        value = self.value(name)
        if not isinstance(value, Mapping):
            raise self.invalid(name, value, "an object")
        return Record(self.source, self.index, value, self._field(name))

    def children(self, name: str, required: bool = False) -> list[Record]:
        """A list of objects; absent or null is an empty list unless ``required``."""
        value = self.value(name) if required else self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.invalid(name, value, "a list of objects")
        return [Record(self.source, self.index, item, f"{self._field(name)}[{i}]") for i, item in enumerate(value)]

    def messages(self, name: str) -> Messages:
        """A chat: a list of ``{"role": str, "content": str}``."""
        return [{"role": m.text("role"), "content": m.text("content")} for m in self.children(name, required=True)]
