"""``selbench config PAIR [--strategy S] [--set k=v]``: the resolved config, each field with its
help. Torch-free: it answers as fast as a config error does.

The output is valid YAML (help as comments), so it can be saved and edited into a pair file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from harness.config import RunConfig

_WIDTH = 100  # comments wrap here


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(help_text: str, indent: str) -> list[str]:
    if not help_text:
        return []
    words, lines, line = help_text.split(), [], ""
    for word in words:
        if line and len(indent) + 2 + len(line) + 1 + len(word) > _WIDTH:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return [f"{indent}# {text}" for text in lines]


def _lines(obj: Any, depth: int, helps: dict[str, str] | None = None) -> list[str]:
    indent = "  " * depth
    out: list[str] = []
    if dataclasses.is_dataclass(obj):
        items = [(f.name, getattr(obj, f.name), f.metadata.get("help", ""))
                 for f in dataclasses.fields(obj)]
    else:  # a mapping: the strategy block, or a free-form dict field
        items = [(k, v, (helps or {}).get(k, "")) for k, v in obj.items()]
    for name, value, help_text in items:
        out += _comment(help_text, indent)
        nested = dataclasses.is_dataclass(value) or (isinstance(value, dict) and value
                                                      and depth == 0 and name == "strategy")
        if nested:
            out.append(f"{indent}{name}:")
            sub_help = None
            if name == "strategy":
                value, sub_help = _strategy_block(value)
            out += _lines(value, depth + 1, sub_help)
        else:
            out.append(f"{indent}{name}: {_scalar(value)}")
    return out


def _strategy_block(block: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The strategy's params, the registered defaults filled in (the run's config holds only
    those set), and the help of each from its params dataclass."""
    from strategies.registry import get_entry

    name = str(block.get("name", "uniform"))
    cls = get_entry(name).params_cls
    full: dict[str, Any] = {"name": name}
    helps = {"name": "the strategy (`selbench list strategies`)"}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                full[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                full[f.name] = f.default_factory()
            helps[f.name] = f.metadata.get("help", "")
    full.update(block)
    return full, helps


def render(cfg: RunConfig) -> str:
    """``cfg`` as commented YAML, headed by its run id."""
    head = [f"# run id: {cfg.run_id()}  (label {cfg.label()})",
            "# every field below with its help; `--set key=value` overrides any of them"]
    return "\n".join(head + _lines(cfg, 0)) + "\n"
