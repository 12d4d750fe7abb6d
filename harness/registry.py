"""Registries: name → class, filled by the registration hooks, checked at lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass, is_dataclass
from typing import Callable

from harness.errors import UsageError, did_you_mean


class RegistrationError(Exception):
    """A plugin registered something invalid (a clash, a wrong base class, a name that is no name)."""


#: a registered name becomes part of run names, run folders and file names: no separators, no
#: leading dot (``../x``, ``a/b`` and ``.hidden`` would write outside or hide in ``results/``)
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


@dataclass
class Entry:
    name: str
    cls: type
    plugin: str

    @property
    def description(self) -> str:
        return self.cls.description


class Registry:
    """One kind of plugin class (algorithm, reward model, evaluator, benchmark)."""

    def __init__(self, kind: str, base: type):
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry] = {}
        #: set by the plugin manager to the plugin whose hook is being called
        self.current_plugin = "<unknown>"

    def add(self, cls: type, name: str | None = None) -> None:
        """Register ``cls`` under ``name`` (default: ``cls.name``)."""
        name = name or getattr(cls, "name", "")
        if not isinstance(cls, type) or not issubclass(cls, self.base):
            raise RegistrationError(
                f"plugin {self.current_plugin!r} registered {cls!r} as {self.kind} {name!r}, "
                f"but it is not a subclass of {self.base.__module__}.{self.base.__name__}"
            )
        if not name:
            raise RegistrationError(f"plugin {self.current_plugin!r} registered {cls.__name__} as a {self.kind} with no name")
        if not isinstance(name, str) or not VALID_NAME.fullmatch(name):
            raise RegistrationError(
                f"plugin {self.current_plugin!r} registered {self.kind} {name!r}: a name is 1-64 letters, digits, '_', '.', "
                "'+' or '-', starting with a letter or digit (names become folder and file names)"
            )
        if not is_dataclass(cls.Config):
            raise RegistrationError(f"{self.kind} {name!r} from plugin {self.current_plugin!r}: Config must be a dataclass")
        if name in self._entries:
            other = self._entries[name]
            raise RegistrationError(
                f"{self.kind} {name!r} is registered twice: by plugin {other.plugin!r} and by plugin {self.current_plugin!r}"
            )
        self._entries[name] = Entry(name, cls, self.current_plugin)

    def get(self, name: str) -> Entry:
        """The entry for ``name``; an unknown name is a :class:`UsageError` listing the valid ones."""
        if name not in self._entries:
            raise UsageError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; valid: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def drop_plugin(self, plugin: str) -> None:
        """Forget what ``plugin`` registered (its registration hook failed half-way)."""
        self._entries = {n: e for n, e in self._entries.items() if e.plugin != plugin}

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Command:
    """A CLI command a plugin added: ``harness <name> ARGS...`` calls ``run(ARGS) -> exit code``."""

    name: str
    run: Callable[[list[str]], int]
    help: str
    plugin: str


class CommandRegistry:
    """Commands added by ``harness_register_commands``. A name is one word (``harness NAME``) or
    two (``harness bench ppo``: a command in the group ``bench``)."""

    kind = "command"

    def __init__(self, reserved=()):
        self._commands: dict[str, Command] = {}
        self.current_plugin = "<unknown>"
        #: names the core CLI owns: a plugin may not take them
        self.reserved = set(reserved)
        #: core command → the plugin that registered it (``add(..., core=True)``: harness.cli.commands)
        self._core: dict[str, str] = {}

    def add(self, name: str, run: Callable[[list[str]], int], help: str, *, core: bool = False) -> None:
        """Register ``run`` as ``harness <name>`` with a one-line ``help``. ``core``: one of the harness's
        own commands (their plugin, harness.cli.commands, passes it): no other plugin may take its name,
        nor make a group of it."""
        words = name.split()
        if not 1 <= len(words) <= 2 or not all(w.replace("-", "").isalnum() for w in words):
            raise RegistrationError(f"plugin {self.current_plugin!r} registered command {name!r}: use one or two words")
        name = " ".join(words)
        if words[0] in self.reserved:
            raise RegistrationError(f"plugin {self.current_plugin!r} registered command {name!r}, but {words[0]!r} is a core command")
        owner = self._core.get(words[0])
        if owner is not None and owner != self.current_plugin:
            raise RegistrationError(f"plugin {self.current_plugin!r} registered command {name!r}, but {words[0]!r} is a core "
                                    f"command (of plugin {owner!r})")  # fmt: skip
        if core:  # a plugin that came first with this name, or a group of it
            taken = [c for c in self._commands.values() if c.name.split()[0] == name and c.plugin != self.current_plugin]
            other = taken[0] if taken else None
            if other is not None:
                raise RegistrationError(f"plugin {other.plugin!r} registered command {other.name!r}, but {name!r} is a core "
                                        f"command (of plugin {self.current_plugin!r})")  # fmt: skip
        if name in self._commands:
            other = self._commands[name]
            raise RegistrationError(f"command {name!r} is registered twice: by plugin {other.plugin!r} and by plugin {self.current_plugin!r}")
        self._commands[name] = Command(name, run, help, self.current_plugin)
        if core:
            self._core[name] = self.current_plugin

    def find(self, argv: list[str]) -> tuple[Command | None, list[str]]:
        """The command ``argv`` starts with (two words first), and the rest of ``argv``."""
        for n in (2, 1):
            name = " ".join(argv[:n])
            if len(argv) >= n and name in self._commands:
                return self._commands[name], argv[n:]
        return None, argv

    def names(self) -> list[str]:
        return sorted(self._commands)

    def core_names(self) -> list[str]:
        """The core commands, in the order they were registered."""
        return list(self._core)

    def is_core(self, name: str) -> bool:
        """Whether ``name`` (or the group it is in) is a core command."""
        return name.split()[0] in self._core

    def drop_plugin(self, plugin: str) -> None:
        """Forget the commands ``plugin`` registered (its registration hook failed half-way)."""
        self._commands = {n: c for n, c in self._commands.items() if c.plugin != plugin}
        self._core = {n: p for n, p in self._core.items() if p != plugin}

    def group(self, word: str) -> list[Command]:
        """The two-word commands whose first word is ``word``."""
        return [c for n, c in sorted(self._commands.items()) if n.split()[0] == word and " " in n]

    def entries(self) -> list[Command]:
        return [self._commands[n] for n in self.names()]
