"""Typed config sections: dataclasses with one help text per field, validated with reasons.

Every config section in selbench is a plain ``@dataclass`` whose fields carry
``metadata={"help": ...}``. Sections validate themselves in ``validate()`` and raise
:class:`ConfigError`, which names the dotted field, the bad value and what is allowed, so the
CLI can print one line and stop before any work starts.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """A config value or key is invalid. The message is one line: field, value, what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str) -> None:
        self.field_name = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"config field '{field_name}' = {value!r} is invalid: {allowed}")


def opt(default: Any = None, help: str = "", *, factory: Any = None) -> Any:  # noqa: A002
    """A documented dataclass field. ``help`` is shown by ``selbench config --help``-style tools."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def check(cond: bool, field_name: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` unless ``cond`` holds."""
    if not cond:
        raise ConfigError(field_name, value, allowed)
