"""What a run read: a content fingerprint of its data, kept in its folder and checked on resume.

A run id covers the config, and a reasoning-gym pool is fixed by its config and seed, but a data
file can change under the same path (a re-export, a fix of a few answers), and a newer
reasoning-gym can generate other questions from the same seed. A run resumed on other data
would mix two pools in one curve, and its strategy's state (indexed by pool position) would
point at the wrong questions. So the first start writes ``data.json`` into the run folder:

- ``files``: sha256 and size of every local file the task reads, by config field;
- ``packages``: the versions of what builds and checks the pool (reasoning-gym for generated
  pools, math-verify for parquet ones);
- ``pool_sha256``: a digest of the questions actually trained and evaluated on (after every
  filter), which also covers Hugging Face datasets read from their cache;
- ``predictor`` (strategies that score with the DOTS predictor): its folder and the sha256 of
  its weights. The artifact lives in a per-machine cache and is refitted on a fresh machine, so
  a resume there would otherwise select the second half of a run with another predictor.

On resume :func:`check` compares and refuses with one line naming the file (or package) and what
changed. The run id does not change: the fingerprint lives beside the config, not in it.
Torch-free.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.instrument.policy import file_sha256
from harness.instrument.tasks import Pool, TaskConfig
from harness.instrument.tasks.tables import is_local, local_path
from harness.runs.records import atomic_write

DATA_FILE = "data.json"
# what builds and scores a pool of each source: a new version may give other questions/rewards
_POOL_PACKAGES = {"reasoning_gym": ("reasoning-gym",), "parquet": ("math-verify",)}


class DataChangedError(Exception):
    """A run would resume on other data than it started with. One line: what changed, the fix."""


def task_files(task: TaskConfig) -> list[tuple[str, str]]:
    """``(config field, path)`` of every table the task reads (local files and dataset names)."""
    out = []
    if task.source == "parquet":
        out.append(("task.path", task.path))
        if task.eval_path:
            out.append(("task.eval_path", task.eval_path))
    out += [(f"task.eval_sets[{i}].path", s.path) for i, s in enumerate(task.eval_sets)]
    return out


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def pool_digest(pool: Pool) -> str:
    """sha256 of the pool's questions (id, text, answer) in order: train, eval, named sets."""
    parts = {"train": pool.train, "eval": pool.eval, **{f"set:{k}": v
                                                       for k, v in pool.eval_sets.items()}}
    body = {k: [[q.qid, q.text, q.answer] for q in qs] for k, qs in parts.items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def predictor_record(directory: Path) -> dict[str, str] | None:
    """The predictor artifact in ``directory``: its folder and the weights' sha256 from its
    manifest (loading the artifact checks the weights against it); None where there is none yet
    (loading it then fails with the command that fits one)."""
    manifest = Path(directory) / "manifest.json"
    try:
        digest = json.loads(manifest.read_text(encoding="utf-8"))["weights_sha256"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return {"path": str(directory), "weights_sha256": str(digest)}


def fingerprint(task: TaskConfig, pool: Pool, predictor: Path | None = None) -> dict[str, Any]:
    """The data fingerprint of a run on ``task``, whose final pool is ``pool``, scoring with the
    predictor artifact in ``predictor`` (None: the strategy uses none)."""
    files: dict[str, dict[str, Any]] = {}
    for field_name, path in task_files(task):
        if is_local(path):
            where = local_path(path)
            files[field_name] = {"path": str(where), "sha256": file_sha256(where),
                                 "bytes": where.stat().st_size}
        else:  # a Hugging Face dataset from the local cache: pool_sha256 covers its content
            files[field_name] = {"dataset": path}
    out: dict[str, Any] = {
        "files": files, "packages": {n: _version(n) for n in _POOL_PACKAGES.get(task.source, ())},
        "pool_sha256": pool_digest(pool)}
    found = predictor_record(predictor) if predictor is not None else None
    if found is not None:
        out["predictor"] = found
    return out


def _fix(run_dir: Path) -> str:
    return (f"give a new --results folder to start a new run on the data as it is now, or "
            f"delete {run_dir}")


def _difference(then: dict[str, Any], now: dict[str, Any], run_dir: Path) -> str | None:
    """One line on the first thing that differs (files, then packages, then the pool), or None."""
    for field_name, old in then.get("files", {}).items():
        new = now["files"].get(field_name, {})
        if old.get("sha256") == new.get("sha256") and old.get("dataset") == new.get("dataset"):
            continue  # the same bytes, wherever the project folder is now
        where = new.get("path") or new.get("dataset")
        moved = "" if where == old.get("path") else f" (then {old.get('path')})"
        return (f"{field_name} {where}{moved} changed since this run started: sha256 "
                f"{str(old.get('sha256'))[:12]}... ({old.get('bytes')} bytes) then, "
                f"{str(new.get('sha256'))[:12]}... ({new.get('bytes')} bytes) now; resuming would "
                f"mix two data sets in one run: restore the file, or {_fix(run_dir)}")
    for name, old in then.get("packages", {}).items():
        new = now["packages"].get(name, "absent")
        if new != old:
            return (f"this run's pool was built with {name} {old}, {name} {new} is installed "
                    f"now (it may build or score other questions); install {name}=={old} "
                    f"(see requirements.lock), or {_fix(run_dir)}")
    if then.get("pool_sha256") not in (None, now["pool_sha256"]):
        return ("the pool built now differs from the one this run started on (same files and "
                "packages: selbench's own data handling changed); check out the commit the "
                f"run started with ({then.get('git_commit', 'unknown')}), or {_fix(run_dir)}")
    old_p, new_p = then.get("predictor"), now.get("predictor") or {}
    if old_p and old_p.get("weights_sha256") != new_p.get("weights_sha256"):
        now_s = (f"{str(new_p.get('weights_sha256'))[:12]}... now ({new_p.get('path')})"
                 if new_p else "none found now")
        return (f"the difficulty predictor changed since this run started: weights sha256 "
                f"{str(old_p.get('weights_sha256'))[:12]}... then ({old_p.get('path')}), {now_s}; "
                f"resuming would select with two predictors in one run: put that artifact back "
                f"(or set predictor.artifact to a copy of it), or {_fix(run_dir)}")
    return None


def check(run_dir: Path, now: dict[str, Any]) -> None:
    """Raise :class:`DataChangedError` if ``run_dir`` was started on other data than ``now``.

    A folder without ``data.json`` (a new run, or one recorded before fingerprints) passes."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return
    try:
        then = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataChangedError(f"{path} is unreadable ({err}); {_fix(Path(run_dir))}") from None
    problem = _difference(then, now, Path(run_dir))
    if problem is not None:
        raise DataChangedError(f"cannot resume {run_dir}: {problem}")


def record(run_dir: Path, now: dict[str, Any], commit: str) -> None:
    """Write ``data.json`` unless the folder has one (:func:`check` passed it), with the
    ``commit`` of the code that started the run (named if selbench's data handling changes)."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        atomic_write(path, json.dumps({**now, "git_commit": commit}, indent=2,
                                      sort_keys=True) + "\n")
