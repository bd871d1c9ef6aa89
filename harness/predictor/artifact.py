"""The saved predictor: ``weights.safetensors`` plus a ``manifest.json`` that vouches for them.

:func:`save_artifact` writes both atomically (the manifest last, with the weights' hash, the
spec, metrics and free-form provenance); :func:`load_artifact` refuses an artifact whose version
or weight hash does not match and returns a ready (eval-mode) model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from harness.predictor.model import AdaptiveDifficultyPredictor, PredictorSpec

# Bump the major number whenever weights, spec fields or the forward pass change meaning, so a
# stale artifact is refused instead of silently producing different predictions.
ARTIFACT_VERSION = "selbench-dots-predictor/1"
_WEIGHTS_FILE = "weights.safetensors"
_MANIFEST_FILE = "manifest.json"


@dataclass
class PredictorArtifact:
    """What :func:`load_artifact` returns: a ready (eval-mode) model and its provenance."""

    model: AdaptiveDifficultyPredictor
    spec: PredictorSpec
    metrics: dict[str, Any]
    meta: dict[str, Any]
    version: str


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(x: Any) -> Any:
    """NaN/inf become null (strict JSON); numpy scalars/arrays become Python values."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def save_artifact(
    directory: str | Path,
    model: AdaptiveDifficultyPredictor,
    metrics: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``weights.safetensors`` and ``manifest.json`` (version, spec, metrics, meta, hash).

    Each file is written atomically and the manifest last, so a crash mid-save never leaves a
    manifest pointing at half-written weights. ``meta`` is free-form provenance (e.g. the
    embedder key, so a run can refuse embeddings from a different embedder).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".weights.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"version": ARTIFACT_VERSION})
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        os.replace(tmp, d / _WEIGHTS_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    manifest = {
        "version": ARTIFACT_VERSION,
        "created_unix": time.time(),
        "spec": model.spec.to_dict(),
        "metrics": _jsonable(metrics or {}),
        "meta": _jsonable(meta or {}),
        "weights_file": _WEIGHTS_FILE,
        "weights_sha256": digest,
    }
    _atomic_write_bytes(d / _MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return d


def load_artifact(directory: str | Path) -> PredictorArtifact:
    """Load and verify an artifact written by :func:`save_artifact` (version and weight hash)."""
    d = Path(directory)
    manifest_path = d / _MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no predictor artifact at {d} (missing {_MANIFEST_FILE})")
    manifest = json.loads(manifest_path.read_text())
    version = str(manifest.get("version", ""))
    name, _, major = version.partition("/")
    want_name, _, want_major = ARTIFACT_VERSION.partition("/")
    if name != want_name or major.split(".")[0] != want_major.split(".")[0]:
        raise ValueError(
            f"artifact {d} has version {version!r}; this code reads {ARTIFACT_VERSION}"
        )
    weights = d / manifest.get("weights_file", _WEIGHTS_FILE)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != manifest.get("weights_sha256"):
        raise ValueError(f"{weights} does not match the hash in {manifest_path} (corrupt/mixed)")
    spec = PredictorSpec.from_dict(manifest["spec"])
    model = AdaptiveDifficultyPredictor(spec)
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return PredictorArtifact(
        model, spec, manifest.get("metrics", {}), manifest.get("meta", {}), version
    )
