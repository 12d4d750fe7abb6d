"""Config dataclasses → CLI flags (as transformers' ``HfArgumentParser`` does), the same configs
from dicts (sweep files), validation with errors that name the flag, and stable hashes."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import types
import typing
import unicodedata
from typing import Any, Literal, Union, get_args, get_origin

from harness.errors import UsageError, did_you_mean


def help_field(help: str, default: Any = dataclasses.MISSING, *, aliases: dict[str, Any] | None = None, **kwargs) -> Any:
    """A dataclass field with CLI help: ``lr: float = help_field("learning rate", 1e-4)``.

    ``aliases`` maps extra flag names to the value they set: ``kl_coef`` with
    ``aliases={"no_kl": 0.0}`` also gets ``--no-kl`` (and ``no_kl: true`` in a sweep file).
    """
    metadata = {"help": help, "aliases": dict(aliases or {})}
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


# -------------------------------------------------------------------------
# argparse types for hand-written flags: ASCII digits only ("２０００" is no setting), finite numbers
# -------------------------------------------------------------------------


def check_text(text: str) -> str:
    """``text`` as given, or an ``ArgumentTypeError`` when it has surrounding whitespace or a
    control character: ``int(" 2000\\n")`` is 2000, but a setting spelt so is a mistake
    (a stray newline from a script, a pasted tab), not a value."""
    if text != text.strip() or any(unicodedata.category(c) == "Cc" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} has surrounding whitespace or a control character: write the value alone")
    return text


def ascii_int(text: str, expected: str = "an integer") -> int:
    """``int(text)`` for ASCII digits only (``int`` also takes "２０００")."""
    check_text(text)
    if text.isascii():
        try:
            return int(text)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def bounded_int(low: int, high: int = 2**63 - 1, expected: str = "an integer"):
    """An argparse type: an ASCII integer in ``low .. high`` (SQLite and torch hold 64-bit ints)."""

    def convert(text: str) -> int:
        value = ascii_int(text, expected)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {'a positive integer' if low == 1 else f'>= {low}'}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    convert.__name__ = "int"
    return convert


positive_int = bounded_int(1, expected="a positive integer")
non_negative_int = bounded_int(0, expected="an integer >= 0")


def finite_float(text: str) -> float:
    """An argparse type: a finite number ("nan" and "inf" are no settings)."""
    check_text(text)
    try:
        if not text.isascii():
            raise ValueError
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def _base_type(tp) -> tuple[Any, bool]:
    """(the scalar type, whether None is allowed) of a field annotation."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _converter(tp, flag: str):
    """(text → value, the choices or None) for a field annotation."""
    scalar, optional = _base_type(tp)
    if get_origin(scalar) is Literal:
        choices = [str(c) for c in get_args(scalar)]

        def convert_choice(text: str):
            check_text(text)
            if text not in choices:
                raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}{did_you_mean(text, choices)}")
            return text

        return convert_choice, choices
    if scalar not in (int, float, str, bool):
        raise TypeError(f"{flag}: unsupported config field type {tp!r}")

    def convert(text: str):
        check_text(text)
        if optional and text.lower() in ("none", "null"):
            return None
        if scalar is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        if scalar is str:
            return text
        # int() and float() accept non-ASCII digits ("２０００") and float() accepts "nan": neither is a setting.
        try:
            if not text.isascii():
                raise ValueError
            value = scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {scalar.__name__}, got {text!r}") from None
        if scalar is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if scalar is int and not -(2**63) <= value < 2**63:  # what SQLite and torch hold
            raise argparse.ArgumentTypeError(f"expected a 64-bit integer, got {text}")
        return value

    convert.__name__ = scalar.__name__  # argparse names the type in its errors
    return convert, None


def coerce(tp, value: Any, key: str) -> Any:
    """A value from a YAML or JSON file (or a string) as field type ``tp``, checked: ints pass for
    floats, strings go through the flag converter, anything else of the wrong type is an error."""
    if isinstance(value, str):
        convert, _ = _converter(tp, key)
        try:
            return convert(value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{key}: {exc}") from None
    scalar, optional = _base_type(tp)
    if value is None and optional:
        return None
    if get_origin(scalar) is Literal:
        return coerce(tp, str(value), key)
    if scalar is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise UsageError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if scalar is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if scalar is bool and isinstance(value, bool):
        return value
    raise UsageError(f"{key}: expected {getattr(scalar, '__name__', scalar)}, got {value!r}")


def _fields(cls) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", title: str | None = None) -> None:
    """Add one flag per field of dataclass ``cls``: type, default and help from the field.

    A bool field defaulting to True gets ``--x/--no-x``; one defaulting to False gets ``--x``.
    Each alias of a field (``help_field(aliases=...)``) is a flag that sets its value.
    """
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    for f, tp in _fields(cls):
        flag, dest = _flag(prefix, f.name), prefix + f.name
        help_text, default = f.metadata.get("help", ""), _default(f)
        scalar, _ = _base_type(tp)
        if scalar is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            group.add_argument(flag, dest=dest, action=action, default=default, help=help_text)
        else:
            convert, choices = _converter(tp, flag)
            metavar = "{" + ",".join(choices) + "}" if choices else scalar.__name__.upper()
            aliased = bool(f.metadata.get("aliases"))
            group.add_argument(flag, dest=dest, type=convert, default=default, metavar=metavar, help=f"{help_text} (default: {default})",
                               **({"action": _StoreOnce} if aliased else {}))  # fmt: skip
        for alias, value in f.metadata.get("aliases", {}).items():
            group.add_argument(_flag(prefix, alias), dest=dest, action=_StoreOnce, nargs=0, const=value, help=f"the same as {flag} {value}")


class _StoreOnce(argparse.Action):
    """A field's flag and its aliases (``--kl-coef 0.1 --no-kl``): two of them with different
    values is a contradiction, not "the last one wins"."""

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else values
        seen = namespace.__dict__.setdefault("_set_by", {})
        if self.dest in seen and seen[self.dest][1] != value:
            parser.error(f"{seen[self.dest][0]} and {option_string} contradict each other: give one of them")
        seen[self.dest] = (option_string, value)
        setattr(namespace, self.dest, value)


def build_config(cls, namespace: argparse.Namespace | dict, prefix: str = "", what: str = "config"):
    """Construct ``cls`` from parsed flags; a ``__post_init__`` error becomes a :class:`UsageError`."""
    values = vars(namespace) if isinstance(namespace, argparse.Namespace) else namespace
    kwargs = {f.name: values[prefix + f.name] for f, _ in _fields(cls) if prefix + f.name in values}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{what}: {exc}") from None


def config_from_dict(cls, values: dict[str, Any], what: str):
    """An instance of dataclass ``cls`` from ``{field or alias: value}`` (a sweep file's
    ``args``, ``--benchmark-set`` overrides): unknown keys, wrong types and ``__post_init__``
    errors are :class:`UsageError` naming ``what``."""
    fields = {f.name: (f, tp) for f, tp in _fields(cls)}
    aliases = {alias: (name, value) for name, (f, _) in fields.items() for alias, value in f.metadata.get("aliases", {}).items()}
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).strip().replace("-", "_")
        if key in aliases:
            name, set_to = aliases[key]
            if coerce(bool, value, f"{what}: {key}"):
                kwargs[name] = set_to
        elif key in fields:
            kwargs[key] = coerce(fields[key][1], value, f"{what}: {key}")
        else:
            valid = sorted(fields) + sorted(aliases)
            raise UsageError(f"{what}: unknown key {key!r}{did_you_mean(key, valid)}; valid: {', '.join(valid)}")
    return build_config(cls, kwargs, what=what)


def parse_overrides(cls, items: list[str], what: str):
    """``key=value`` strings (``--benchmark-set corpus_size=2000``) → an instance of ``cls``."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"{what}: expected key=value, got {item!r}")
        values[key] = text
    return config_from_dict(cls, values, what)


def field_help(cls) -> list[tuple[str, Any, str]]:
    """(name, default, help) of each field of dataclass ``cls``."""
    return [(f.name, _default(f), f.metadata.get("help", "")) for f, _ in _fields(cls)]


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (a non-finite float as its text)."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in dataclasses.asdict(config).items()}


def stable_json(value: Any) -> str:
    """Canonical JSON (sorted keys, dataclasses as dicts): equal values give equal text."""

    def default(obj):
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)
        return str(obj)

    return json.dumps(value, sort_keys=True, default=default)


def config_hash(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts (dataclasses included)."""
    return hashlib.sha256(stable_json(parts).encode()).hexdigest()[:16]
