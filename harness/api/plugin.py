"""What every registered plugin class has: a name, a one-line description and a config dataclass.
Part of the contract (ground floor): imports nothing of the harness."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass
class EmptyConfig:
    """No options."""


class Plugin(abc.ABC):
    """What every registered class has: a name, a one-line description, a config dataclass."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()
