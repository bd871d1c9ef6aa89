"""DOTS adaptive difficulty predictor (DESIGN-NOTES section 1). All torch code of selbench's
selection side lives here so that ``strategies`` stays torch-free: strategies receive plain
numpy pass-rate predictions from :class:`PoolScorer`.
"""

from __future__ import annotations

from harness.predictor.embed import Embedder, embed_texts, lm_mean_pool, sentence_transformer
from harness.predictor.model import AdaptiveDifficultyPredictor, PredictorSpec
from harness.predictor.scorer import PoolScorer
from harness.predictor.train import (
    ARTIFACT_VERSION,
    FitResult,
    PredictorArtifact,
    apply_linear_calibration,
    fit_predictor,
    linear_calibration,
    load_artifact,
    no_adapter_predict,
    save_artifact,
)

__all__ = [
    "ARTIFACT_VERSION",
    "AdaptiveDifficultyPredictor",
    "Embedder",
    "FitResult",
    "PoolScorer",
    "PredictorArtifact",
    "PredictorSpec",
    "apply_linear_calibration",
    "embed_texts",
    "fit_predictor",
    "linear_calibration",
    "lm_mean_pool",
    "load_artifact",
    "no_adapter_predict",
    "save_artifact",
    "sentence_transformer",
]
