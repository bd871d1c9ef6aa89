"""Where question tables come from: local parquet/JSONL/JSON files or Hugging Face datasets.

A path that looks like a file (a known suffix, or starting with ``/``, ``.`` or ``~``) is read
locally; relative paths are taken from the project folder, so ``../shared/data/x.parquet`` means
the same file whatever the working directory. Anything else of the form ``org/name`` is a Hugging
Face dataset name, loaded with ``datasets`` (from its cache when offline). A missing file or an
unreachable dataset stops the run with one line naming the config field and the file to provide.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.config.base import ConfigError
from harness.runs.paths import PROJECT_ROOT

LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json")
LAYOUT_HINT = (
    "provide a verl/OpenRLHF-layout parquet (columns prompt, reward_model.ground_truth, "
    "extra_info.question), e.g. the DeepScaleR subset ../shared/data/deepscaler_10240.parquet"
)
_HF_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class TaskFileNotFound(ConfigError, FileNotFoundError):
    """A configured data file or dataset is not available (catchable as either error type)."""


def is_local(path: str) -> bool:
    """Whether ``path`` names a local file rather than a Hugging Face dataset."""
    return (path.startswith(("/", ".", "~")) or path.endswith(LOCAL_SUFFIXES)
            or not _HF_NAME.match(path))


def local_path(path: str) -> Path:
    """``path`` with ``~`` expanded; relative paths are taken from the project folder."""
    out = Path(path).expanduser()
    return out if out.is_absolute() else (PROJECT_ROOT / out).resolve()


def read_table(path: str, split: str, subset: str | None, field: str) -> Any:
    """The whole table as a ``pyarrow.Table`` (split/subset apply to dataset names only)."""
    if is_local(path):
        return _read_local(path, field)
    return _read_hub(path, split, subset, field)


def _read_local(path_str: str, field: str) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    path = local_path(path_str)
    if not path.is_file():
        raise TaskFileNotFound(field, path_str, f"no such file ({path}); {LAYOUT_HINT}, or a "
                               "JSONL file, or a Hugging Face dataset name")
    try:
        if path.suffix == ".jsonl":
            return pj.read_json(path)
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data if isinstance(data, list) else next(
                (v for v in data.values() if isinstance(v, list)), None)
            if rows is None:
                raise ValueError("expected a JSON list of records")
            return pa.Table.from_pylist(rows)
        return pq.read_table(path)
    except Exception as err:
        raise ConfigError(field, path_str, f"not a readable table ({err}); {LAYOUT_HINT}") from err


def _read_hub(name: str, split: str, subset: str | None, field: str) -> Any:
    import os

    # like models, datasets come from the local cache unless the hub is allowed explicitly
    offline = os.environ.get("HF_HUB_OFFLINE", "1") not in ("0", "false", "False")
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
        import huggingface_hub.constants
    except ImportError:
        raise ConfigError(field, name, "a Hugging Face dataset name needs the `datasets` package "
                          "(pip install datasets), or give a local parquet/JSONL file") from None
    if offline:
        # both libraries read the variable once, at import: imported earlier, they would still
        # try the network (and wait for its time-outs)
        datasets.config.HF_HUB_OFFLINE = True
        huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        ds = datasets.load_dataset(name, subset, split=split)
    except Exception as err:
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise TaskFileNotFound(
            field, name,
            f"could not load this Hugging Face dataset (split {split!r}"
            f"{'' if subset is None else f', subset {subset!r}'}): {reason}. Without network, "
            f"download it elsewhere, save it as parquet or JSONL and set {field} to that file",
        ) from err
    return ds.data.table
