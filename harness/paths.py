"""Where selbench keeps things it builds (models, embeddings) and what it writes (run records)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# SELBENCH_CONFIG_DIR points the CLI at another configs/ tree (tests, out-of-tree suites)
CONFIG_DIR = Path(os.environ.get("SELBENCH_CONFIG_DIR", PROJECT_ROOT / "configs"))


def cache_dir() -> Path:
    """Built artefacts (tiny models, converted SmolLM2, embeddings). ``$SELBENCH_CACHE`` overrides."""
    root = Path(os.environ.get("SELBENCH_CACHE", Path.home() / ".cache" / "selbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def results_dir() -> Path:
    """Run records. ``$SELBENCH_RESULTS`` overrides; default ``results/`` in the project."""
    return Path(os.environ.get("SELBENCH_RESULTS", PROJECT_ROOT / "results"))
