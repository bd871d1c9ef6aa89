"""Typed config sections: dataclasses with one help text per field, validated with reasons.

Every config section in selbench is a plain ``@dataclass`` whose fields carry
``metadata={"help": ...}``. Sections validate themselves in ``validate()`` and raise
:class:`ConfigError`, which names the dotted field, the bad value and what is allowed, so the
CLI can print one line and stop before any work starts. :func:`from_dict` builds a section from a
YAML mapping, checking each value against its field's type (shared by the run config and the
strategies' params dataclasses).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
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


# ---------------------------------------------------------------- dict -> typed dataclasses


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if errors else ConfigError(name, value, f"expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(name, value, f"expected a mapping of {tp.__name__} fields")
        return from_dict(tp, value, name)
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(name, value, "expected a list")
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, value, "expected a mapping")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, value, "expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, value, "expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, value, "expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(name, value, "expected a string")
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", owner: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a suggestion and
    values of the wrong type (an int field takes no 1.5 and no ``true``; a float one takes an
    int). ``owner`` names what the keys belong to in the unknown-key message (a strategy)."""
    if not isinstance(data, dict):
        raise ConfigError(prefix or "config", data, f"expected a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"allowed keys: {', '.join(fields)}" if fields else "it takes no keys")
            raise ConfigError(dotted, value, f"unknown key{f' for {owner!r}' if owner else ''}; {hint}")
        kwargs[key] = _coerce(value, hints[key], dotted)
    return cls(**kwargs)
