"""Where selbench reads configs from, writes run records to and keeps what it builds.

Defaults follow the user, not the installed package: a *project* is the nearest folder at or
above the working directory that holds ``configs/base.yaml`` (``$SELBENCH_PROJECT`` names one
outright). Its ``configs/`` are read and its ``results/`` written. Outside any project, configs
come from the ones that ship with selbench (:data:`PROJECT_ROOT`) and results go to
``./results``, so a non-editable install, or another checkout's environment, never writes into
site-packages or into that other checkout. ``$SELBENCH_CONFIG_DIR`` and ``$SELBENCH_RESULTS``
override each one alone.
"""

from __future__ import annotations

import os
from pathlib import Path

# selbench's own tree: its shipped configs, suite models, sweeps and git history
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def find_project(start: Path | None = None) -> Path | None:
    """``$SELBENCH_PROJECT``, else the nearest folder at or above ``start`` (default the working
    directory) holding ``configs/base.yaml``; None outside any project."""
    named = os.environ.get("SELBENCH_PROJECT")
    if named:
        return Path(named).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "configs" / "base.yaml").is_file():
            return folder
    return None


def _config_dir() -> Path:
    if os.environ.get("SELBENCH_CONFIG_DIR"):  # tests and out-of-tree suites
        return Path(os.environ["SELBENCH_CONFIG_DIR"])
    project = find_project()
    return (project or PROJECT_ROOT) / "configs"


CONFIG_DIR = _config_dir()


def cache_dir() -> Path:
    """Built artefacts (tiny models, converted SmolLM2, embeddings). ``$SELBENCH_CACHE`` overrides."""
    root = Path(os.environ.get("SELBENCH_CACHE", Path.home() / ".cache" / "selbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def results_dir() -> Path:
    """Run records: ``$SELBENCH_RESULTS``, else ``results/`` in the project, else in the working
    directory."""
    if os.environ.get("SELBENCH_RESULTS"):
        return Path(os.environ["SELBENCH_RESULTS"])
    return (find_project() or Path.cwd()) / "results"
