"""The run config's layering: YAML files, includes, command-line overrides, resolution.

Layering, later wins: ``configs/base.yaml`` < ``configs/pairs/<pair>.yaml`` <
``configs/strategies/<strategy>.yaml`` < ``--set key=value`` overrides. A pair names its model
(``model: tiny-a``), which is replaced by ``configs/models/<name>.yaml`` so that the resolved
config written into every run folder says everything that determines the run. A pair or model
missing from ``configs/`` is looked up in the archive, ``studies/*/configs/`` (retired pairs and
the studies run on them; :mod:`harness.config.files`), and resolves as it did before it moved.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` before any work
starts, naming the dotted field, the bad value and what is allowed. The typed sections
(:class:`RunConfig` and its parts) live in :mod:`harness.config.sections`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml

from harness.config import files as configfiles
from harness.config.base import ConfigError, from_dict
from harness.config.files import read_yaml
from harness.config.sections import (
    RunConfig,
)
from harness.runs.paths import CONFIG_DIR

# ---------------------------------------------------------------- YAML layering


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def list_names(kind: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Names of the live configs of ``kind`` (``config_dir/<kind>/*.yaml``), sorted."""
    return configfiles.list_names(kind, config_dir)


def list_archived(kind: str) -> list[str]:
    """Names of the archived configs of ``kind`` (``studies/*/configs/<kind>/*.yaml``), sorted."""
    return configfiles.list_archived(kind)


def _named_yaml(kind: str, name: str, field_name: str, config_dir: Path) -> dict[str, Any]:
    """``config_dir/<kind>/<name>.yaml``, else the archived one (harness.config.files)."""
    found = configfiles.find_named(kind, name, config_dir)
    if found is None:
        path = config_dir / kind / f"{name}.yaml"
        names = list_names(kind, config_dir)
        close = difflib.get_close_matches(name, [*names, *list_archived(kind)], n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"available: {', '.join(names)}"
        raise ConfigError(field_name, name, f"no {path.relative_to(config_dir.parent)}; {hint}")
    return read_yaml(found)


def _with_includes(layer: dict[str, Any], config_dir: Path) -> dict[str, Any]:
    """A pair file's ``include: [tasks/NAME, ...]`` (files under configs/, ``.yaml`` optional)
    merged under it in order, so a task block shared by several pairs lives once."""
    names = layer.pop("include", [])
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError("include", names, "a list of files under configs/, e.g. [tasks/chainsum]")
    merged: dict[str, Any] = {}
    for name in names:
        path = config_dir / (name if name.endswith(".yaml") else f"{name}.yaml")
        if not path.is_file():
            raise ConfigError("include", name, f"no {path}; includes are paths under "
                              f"{config_dir.name}/, e.g. tasks/chainsum")
        merged = deep_merge(merged, _with_includes(read_yaml(path), config_dir))
    return deep_merge(merged, layer)


def _known_keys(layer: dict[str, Any], where: str) -> dict[str, Any]:
    """``layer`` (one config file) if its top-level keys are run-config sections; a misspelt one
    is named with its file, which the merged config could no longer say."""
    known = [f.name for f in dataclasses.fields(RunConfig)]
    for key, value in layer.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(known)}"
            raise ConfigError(f"{where}: {key}", value, f"unknown key; {hint}")
    return layer


def _pair_layer(layer: dict[str, Any], where: str, config_dir: Path) -> dict[str, Any]:
    """A pair file with its includes merged in; it must name its model."""
    if not layer:
        raise ConfigError("pair", where, "the pair file is empty; a pair names its model and its "
                          "task (see configs/pairs/*.yaml)")
    merged = _known_keys(_with_includes(layer, config_dir), where)
    if "model" not in merged:
        raise ConfigError(f"{where}: model", None, "a pair names its model: a name of "
                          "configs/models (`selbench list models`) or a mapping of model fields")
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (['a', 'b'], value parsed as YAML so numbers and lists work)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected key=value, e.g. --set train.lr=1e-4")
    key, _, raw = text.partition("=")
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads '1e-4' as a string; accept it as the number a researcher meant
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value for c in ".eE") else value
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], text: str) -> dict[str, Any]:
    path, value = parse_override(text)
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(".".join(path), value, f"'{part}' is not a section")
    node[path[-1]] = value
    return out


def model_dict(name: str, config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    return {"name": name, **_named_yaml("models", name, "model", config_dir)}


def resolve(
    pair: str,
    strategy: str | None = None,
    seed: int = 0,
    overrides: list[str] | None = None,
    steps: int | None = None,
    config_dir: Path = CONFIG_DIR,
) -> RunConfig:
    """Compose and validate a run config from the layered YAML files and overrides."""
    data = read_yaml(config_dir / "base.yaml") if (config_dir / "base.yaml").exists() else {}
    if pair.endswith((".yaml", ".yml")):
        # a pair file given by path (a user's own pair): its name is the file's stem, and its
        # runs land under --results like any other (the path never enters the run folder)
        path = Path(pair).expanduser()
        if not path.is_file():
            raise ConfigError("pair", pair, "no such file; give a pair name (`selbench list "
                              "pairs`) or the path of a pair .yaml file")
        layer = _pair_layer(read_yaml(path), str(path), config_dir)
        pair = path.stem
    else:
        found = configfiles.find_named("pairs", pair, config_dir)
        layer = _pair_layer(_named_yaml("pairs", pair, "pair", config_dir),
                            str(found) if found else pair, config_dir)
    data = deep_merge(data, layer)
    data["pair"] = pair
    if strategy is not None:
        from strategies.registry import get_entry

        if ":" not in strategy:
            get_entry(strategy)  # unknown names fail here with "did you mean"
        strat_file = config_dir / "strategies" / f"{strategy}.yaml"
        layer = _known_keys(read_yaml(strat_file), str(strat_file)) if strat_file.exists() else {}
        if not isinstance(layer.setdefault("strategy", {}), dict):
            raise ConfigError(f"{strat_file}: strategy", layer["strategy"],
                              "a mapping of the strategy's params")
        layer["strategy"]["name"] = strategy
        data = deep_merge(data, layer)
    data["seed"] = seed
    if steps is not None:
        data = deep_merge(data, {"train": {"steps": steps}})
    if isinstance(data.get("model"), str):
        data["model"] = model_dict(data["model"], config_dir)
    for text in overrides or []:
        data = apply_override(data, text)
    cfg: RunConfig = from_dict(RunConfig, data)
    cfg.validate()
    return cfg


def load_resolved(path: Path) -> RunConfig:
    """Read a run folder's ``config.yaml`` back into a validated config."""
    cfg: RunConfig = from_dict(RunConfig, read_yaml(path))
    cfg.validate()
    return cfg


def dump(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
