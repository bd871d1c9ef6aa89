"""Registry of strategies: name -> implementation, with "did you mean" on typos.

Built-in strategies are listed lazily as ``"module:attr"`` strings so that listing names does
not import every implementation; out-of-tree strategies plug in the same way with
``--set strategy.name=my_pkg.my_mod:MyStrategy``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strategies.base import Strategy


class UnknownStrategyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want a plain line
        return str(self.args[0])


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: its factory, its params dataclass and a one-line description."""

    name: str
    factory: Callable[..., Strategy]
    params_cls: type
    description: str
    # the backbone then loads the pair's frozen difficulty predictor and offers ctx.predict
    uses_predictor: bool = False


_BUILTIN: dict[str, str] = {
    "uniform": "baselines.uniform:ENTRY",
    "dapo": "baselines.dapo:ENTRY",
    "greso": "baselines.greso:ENTRY",
    "mopps": "baselines.mopps:ENTRY",
    "speed": "baselines.speed:ENTRY",
    "pods": "baselines.pods:ENTRY",
    "oracle": "strategies.oracle:ENTRY",
    "dots": "strategies.dots:ENTRY",
    "dots-reuse": "strategies.dots:REUSE_ENTRY",
    "dots-cooldown": "strategies.dots:COOLDOWN_ENTRY",
}
_REGISTERED: dict[str, StrategyEntry] = {}


def register(entry: StrategyEntry) -> StrategyEntry:
    """Register a strategy; a second registration under the same name is an error."""
    if entry.name in _REGISTERED and _REGISTERED[entry.name] is not entry:
        raise ValueError(f"strategy '{entry.name}' is already registered")
    _REGISTERED[entry.name] = entry
    return entry


def available() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def _load(target: str) -> StrategyEntry:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, StrategyEntry):
        raise TypeError(f"{target} is not a StrategyEntry")
    return obj


def get_entry(name: str) -> StrategyEntry:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        return register(_load(_BUILTIN[name]))
    if ":" in name:
        return _load(name)
    close = difflib.get_close_matches(name, available(), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UnknownStrategyError(
        f"unknown strategy '{name}'{hint} (available: {', '.join(available())})"
    )


def params_from_dict(entry: StrategyEntry, params: dict[str, Any], prefix: str = "strategy") -> Any:
    """Build and validate the strategy's params dataclass from a config mapping: unknown names
    get a "did you mean", values are checked against the fields' types (as every config field
    is), then the params' own ``validate`` checks ranges."""
    from harness.config.base import from_dict

    obj = from_dict(entry.params_cls, params, prefix, owner=entry.name)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(prefix)
    return obj


def build_strategy(name: str, params: dict[str, Any], pool_size: int, seed: int) -> Strategy:
    """Instantiate a strategy for a pool of ``pool_size`` questions, seeded."""
    entry = get_entry(name)
    return entry.factory(params_from_dict(entry, params), pool_size=pool_size, seed=seed)
