"""Config dataclasses → CLI flags (as transformers' ``HfArgumentParser`` does), validation with
errors that name the flag, and stable hashes of configs."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from harness.errors import UsageError, did_you_mean


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
    scalar, optional = _base_type(tp)
    if get_origin(scalar) is Literal:
        choices = [str(c) for c in get_args(scalar)]

        def convert_choice(text: str):
            if text not in choices:
                raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}{did_you_mean(text, choices)}")
            return text

        return convert_choice, choices
    if scalar not in (int, float, str, bool):
        raise TypeError(f"{flag}: unsupported config field type {tp!r}")

    def convert(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        if scalar is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        try:
            return scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {scalar.__name__}, got {text!r}") from None

    convert.__name__ = scalar.__name__  # argparse names the type in its errors
    return convert, None


def _fields(cls) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", title: str | None = None) -> None:
    """Add one flag per field of dataclass ``cls``: type, default and help from the field.

    A bool field defaulting to True gets ``--x/--no-x``; one defaulting to False gets ``--x``.
    """
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    for f, tp in _fields(cls):
        flag = _flag(prefix, f.name)
        dest = prefix + f.name
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        scalar, _ = _base_type(tp)
        if scalar is bool:
            if default:
                group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            else:
                group.add_argument(flag, dest=dest, action="store_true", default=default, help=help_text)
            continue
        convert, choices = _converter(tp, flag)
        metavar = "{" + ",".join(choices) + "}" if choices else scalar.__name__.upper()
        group.add_argument(
            flag, dest=dest, type=convert, default=default, metavar=metavar, help=f"{help_text} (default: {default})"
        )


def build_config(cls, namespace: argparse.Namespace | dict, prefix: str = "", what: str = "config"):
    """Construct ``cls`` from parsed flags; a ``__post_init__`` error becomes a :class:`UsageError`."""
    values = vars(namespace) if isinstance(namespace, argparse.Namespace) else namespace
    kwargs = {f.name: values[prefix + f.name] for f, _ in _fields(cls) if prefix + f.name in values}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{what}: {exc}") from None


def parse_overrides(cls, items: list[str], what: str):
    """``key=value`` strings (``--bench corpus_size=2000``) → an instance of dataclass ``cls``."""
    fields = {f.name: tp for f, tp in _fields(cls)}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"{what}: expected key=value, got {item!r}")
        if key not in fields:
            raise UsageError(f"{what}: unknown key {key!r}{did_you_mean(key, fields)}; valid: {', '.join(sorted(fields))}")
        convert, _ = _converter(fields[key], key)
        try:
            values[key] = convert(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{what}: {key}: {exc}") from None
    return build_config(cls, values, what=what)


def config_hash(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts (dataclasses included)."""

    def default(obj):
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)
        return str(obj)

    text = json.dumps(parts, sort_keys=True, default=default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def help_field(help: str, default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A dataclass field with CLI help: ``lr: float = help_field("learning rate", 1e-4)``."""
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)
