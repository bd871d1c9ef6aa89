"""DOTS adaptive difficulty predictor (DESIGN-NOTES section 1). All torch code of selbench's
selection side lives here so that ``strategies`` stays torch-free: strategies receive plain
numpy pass-rate predictions from :class:`PoolScorer`.

The names below load on first use (PEP 562): ``harness.predictor.fit`` resolves configs and
defines the CLI's errors torch-free, and importing it must not pull torch in through this file.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Embedder": "embed", "embed_texts": "embed", "lm_mean_pool": "embed",
    "sentence_transformer": "embed",
    "AdaptiveDifficultyPredictor": "model", "PredictorSpec": "model",
    "PoolScorer": "scorer",
    **{name: "artifact" for name in (
        "ARTIFACT_VERSION", "PredictorArtifact", "load_artifact", "save_artifact")},
    **{name: "train" for name in (
        "FitResult", "apply_linear_calibration", "fit_predictor", "linear_calibration",
        "no_adapter_predict")},
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
