"""The CPU suite's membership: ``configs/suites/<name>.yaml``, read without torch.

A suite file::

    name: cpu
    description: one line
    pairs: [name, ...]          # the suite's pairs, in display order
    real_llm: [smollm2-arith]    # listed apart: too slow on a CPU to sweep
    frozen_commit: null          # the commit that froze the suite (set when frozen)

Every name must be a pair of ``configs/pairs/`` (archived pairs, ``studies/*/configs/pairs``,
are not suite members). ``selbench list pairs`` shows the suite first.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import files as configfiles
from harness.config.base import ConfigError
from harness.runs import paths

SUITE_KEYS = ("name", "description", "pairs", "real_llm", "frozen_commit", "step0_accuracy")


class SuiteError(ValueError):
    """A bad suite file: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    pairs: list[str]
    real_llm: list[str]
    frozen_commit: str | None
    path: Path
    # the held-out accuracy of each pair's shipped base model (exact metric), recorded when the
    # suite was frozen: every machine must measure the same (tests/test_suite_models.py)
    step0_accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        """Every pair the suite file names: ``pairs`` then ``real_llm``."""
        return [*self.pairs, *self.real_llm]


def suite_path(name: str = "cpu", config_dir: Path | None = None) -> Path:
    return (config_dir or paths.CONFIG_DIR) / "suites" / f"{name}.yaml"


def display_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (e.g. ``configs/suites/cpu.yaml`` for the config tree's
    parent), else as it is."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _names(raw: Any, key: str, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise SuiteError(f"{where}: '{key}' must be a list of pair names, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise SuiteError(f"{where}: '{key}' lists a pair twice: {raw!r}")
    return list(raw)


def load_suite(name: str = "cpu", config_dir: Path | None = None,
               check_pairs: bool = True) -> Suite:
    """Read and check a suite file; with ``check_pairs`` every named pair must exist."""
    config_dir = config_dir or paths.CONFIG_DIR
    path = suite_path(name, config_dir)
    where = display_path(path, config_dir.parent)
    if not path.is_file():
        raise SuiteError(f"no suite file {where}")
    try:
        data = configfiles.read_yaml(path)
    except ConfigError as err:
        raise SuiteError(f"{where}: {err.allowed}") from None
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(SUITE_KEYS)}")
    pairs = _names(data.get("pairs"), "pairs", where)
    real_llm = _names(data.get("real_llm"), "real_llm", where)
    both = sorted(set(pairs) & set(real_llm))
    if both:
        raise SuiteError(f"{where}: {', '.join(both)} listed in both 'pairs' and 'real_llm'")
    frozen = data.get("frozen_commit")
    if frozen is not None and not isinstance(frozen, str):
        raise SuiteError(f"{where}: 'frozen_commit' must be a commit hash or null, got {frozen!r}")
    step0 = data.get("step0_accuracy") or {}
    if not isinstance(step0, dict) or not all(
            isinstance(v, int | float) and 0 <= v <= 1 for v in step0.values()):
        raise SuiteError(f"{where}: 'step0_accuracy' must map pair names to accuracies in [0, 1]")
    stray = sorted(set(step0) - set(pairs))
    if stray:
        raise SuiteError(f"{where}: 'step0_accuracy' names {', '.join(stray)}, not in 'pairs'")
    suite = Suite(name=str(data.get("name", name)), description=str(data.get("description", "")),
                  pairs=pairs, real_llm=real_llm, frozen_commit=frozen, path=path,
                  step0_accuracy={k: float(v) for k, v in step0.items()})
    if check_pairs:
        live = set(configfiles.list_names("pairs", config_dir))
        for pair in suite.members:
            if pair not in live:
                archived = configfiles.archived_files("pairs").get(pair)
                why = (f" (archived in {display_path(archived, paths.PROJECT_ROOT)}; suite pairs "
                       "live in configs/pairs)" if archived else "")
                missing = display_path(config_dir / "pairs" / f"{pair}.yaml", config_dir.parent)
                raise SuiteError(f"{where}: pair '{pair}' has no {missing}{why}")
    return suite


def pair_model_kind(pair: str, config_dir: Path | None = None) -> tuple[str, str]:
    """(model name, model kind) of a pair, from its YAML and its model's, without resolving
    the whole config (no torch). Kind 'tiny' when unstated, as in ModelConfig."""
    config_dir = config_dir or paths.CONFIG_DIR
    path = configfiles.find_named("pairs", pair, config_dir)
    if path is None:
        return "", ""
    model = configfiles.read_yaml(path).get("model", "")
    if isinstance(model, dict):
        return str(model.get("name", "")), str(model.get("kind", "tiny"))
    model_file = configfiles.find_named("models", str(model), config_dir) if model else None
    kind = configfiles.read_yaml(model_file).get("kind", "tiny") if model_file else ""
    return str(model), str(kind)


def suite_files(suite: Suite, config_dir: Path | None = None) -> list[Path]:
    """Every file that defines the suite's pairs: each pair file, the files it includes, its
    model's config and shipped weights, and ``configs/base.yaml``, in a stable order. Together
    with the suite file these are what freezing fixes."""
    config_dir = config_dir or paths.CONFIG_DIR
    out: list[Path] = [config_dir / "base.yaml"]
    for pair in suite.pairs:
        path = configfiles.find_named("pairs", pair, config_dir)
        if path is None:
            raise SuiteError(f"pair '{pair}' has no file under {config_dir / 'pairs'}")
        data = configfiles.read_yaml(path)
        names = data.get("include", [])
        names = [names] if isinstance(names, str) else list(names)
        out += [path, *(config_dir / (n if n.endswith(".yaml") else f"{n}.yaml") for n in names)]
        model = data.get("model")
        if isinstance(model, str) and model:
            out += [config_dir / "models" / f"{model}.yaml", config_dir / "models" / "weights" / model]
    seen: dict[Path, None] = {}
    for p in out:
        seen.setdefault(p, None)
    return list(seen)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(paths.PROJECT_ROOT), *args], capture_output=True,
                          text=True, check=False)


def frozen_changes(suite: Suite, config_dir: Path | None = None) -> list[str]:
    """What changed in the suite since ``frozen_commit``: the suite's files that differ from that
    commit (committed or not), and the suite file itself if anything but ``frozen_commit`` did.
    Empty for an intact frozen suite. Raises SuiteError when the suite is not frozen or the commit
    is not in this checkout (a shallow clone)."""
    if not suite.frozen_commit:
        raise SuiteError(f"{suite.path.name}: the suite is not frozen (frozen_commit is null)")
    commit = suite.frozen_commit
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise SuiteError(f"frozen_commit {commit} is not in this checkout's history "
                         "(a shallow clone? fetch the full history to check the freeze)")
    root = paths.PROJECT_ROOT
    rel = [str(p.relative_to(root)) for p in suite_files(suite, config_dir)]
    diff = _git("diff", "--name-only", commit, "--", *rel)
    changed = [line for line in diff.stdout.splitlines() if line]
    # untracked files added under a frozen folder (e.g. new weights) count too
    extra = _git("ls-files", "--others", "--exclude-standard", "--", *rel)
    changed += [line for line in extra.stdout.splitlines() if line]
    suite_rel = str(suite.path.relative_to(root))
    then = _git("show", f"{commit}:{suite_rel}")
    if then.returncode != 0:
        changed.append(suite_rel)
    else:
        old = yaml.safe_load(then.stdout) or {}
        new = configfiles.read_yaml(suite.path)
        old.pop("frozen_commit", None)
        new.pop("frozen_commit", None)
        if old != new:
            changed.append(suite_rel)
    return sorted(set(changed))
