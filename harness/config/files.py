"""Where named config files live, and how they are read: torch-free, for listings and the CLI.

A pair or model ``NAME`` of kind ``pairs`` / ``models`` is ``<config_dir>/<kind>/NAME.yaml``;
failing that, the archive of retired configs: ``<project>/studies/*/configs/<kind>/NAME.yaml``
(the folders in sorted order, the first match wins). Archived configs resolve exactly as they
did in ``configs/``, so their runs keep their ids, but listings leave them out unless asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.config.base import ConfigError
from harness.runs.paths import PROJECT_ROOT

# studies of retired pairs; each may hold configs/<kind>/<name>.yaml beside its sweeps and reports
ARCHIVE_DIR = PROJECT_ROOT / "studies"


# libyaml's parser with PyYAML's safe constructors: the same values as yaml.safe_load (a test
# checks every shipped file), parsed about ten times faster; the pure-Python parser was most of
# `selbench list pairs`'s half second. PyYAML built without libyaml falls back to it.
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's mapping (an empty file is an empty one); anything else is a one-line
    ConfigError naming the file."""
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as err:
        # PyYAML's own message spans lines (it quotes the file); one line: where, and what
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(str(path), "<unparsable>", f"not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), "<unreadable>", f"cannot read it ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), data, "a config file must be a mapping")
    return data


def list_names(kind: str, config_dir: Path) -> list[str]:
    """Names of ``<config_dir>/<kind>/*.yaml`` (the live configs), sorted."""
    return sorted(p.stem for p in (config_dir / kind).glob("*.yaml"))


def archived_files(kind: str, archive_dir: Path | None = None) -> dict[str, Path]:
    """Archived name -> file, from ``studies/*/configs/<kind>/*.yaml``; deterministic: the
    files in sorted order, the first of a name wins."""
    root = ARCHIVE_DIR if archive_dir is None else archive_dir
    out: dict[str, Path] = {}
    for path in sorted(root.glob(f"*/configs/{kind}/*.yaml")):
        out.setdefault(path.stem, path)
    return out


def list_archived(kind: str, archive_dir: Path | None = None) -> list[str]:
    """Names of the archived configs of ``kind`` (``pairs``, ``models``), sorted."""
    return sorted(archived_files(kind, archive_dir))


def find_named(kind: str, name: str, config_dir: Path) -> Path | None:
    """The file of ``name``: the live one in ``config_dir`` first, then the archive; or None."""
    path = config_dir / kind / f"{name}.yaml"
    if path.exists():
        return path
    return archived_files(kind).get(name)
