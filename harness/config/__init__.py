"""The run config: typed sections (:mod:`.sections`, on :mod:`.base`), the named files
(:mod:`.files`), their layering and overrides (:mod:`.layers`), ``selbench config``
(:mod:`.show`). Torch-free.

``from harness import config`` then ``config.resolve(...)``, ``config.RunConfig``: the names
below are loaded on first use. Eagerly importing them here would close an import cycle: the
sections are built from specs (``TinyModelSpec``, ``TaskConfig``, ``ExecutorConfig``) whose
modules import :mod:`harness.config.base`, which runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_FROM = {
    "ConfigError": "base", "from_dict": "base", "read_yaml": "files",
    **dict.fromkeys(["EvalConfig", "ModelConfig", "PredictorConfig", "PredictorFitConfig",
                     "ReplayConfig", "RunConfig", "TrainConfig", "WatchConfig", "field_help"],
                    "sections"),
    **dict.fromkeys(["CONFIG_DIR", "apply_override", "deep_merge", "dump", "list_archived",
                     "list_names", "load_resolved", "model_dict", "parse_override", "resolve"],
                    "layers"),
}
__all__ = sorted(_FROM)

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and editors
    from harness.config.base import ConfigError, from_dict  # noqa: F401
    from harness.config.files import read_yaml  # noqa: F401
    from harness.config.layers import (  # noqa: F401
        CONFIG_DIR,
        apply_override,
        deep_merge,
        dump,
        list_archived,
        list_names,
        load_resolved,
        model_dict,
        parse_override,
        resolve,
    )
    from harness.config.sections import (  # noqa: F401
        EvalConfig,
        ModelConfig,
        PredictorConfig,
        PredictorFitConfig,
        ReplayConfig,
        RunConfig,
        TrainConfig,
        WatchConfig,
        field_help,
    )


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'harness.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"harness.config.{_FROM[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
