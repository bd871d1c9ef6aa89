"""Sweeps: a YAML file of pairs x strategies x seeds, expanded into validated run configs.

A sweep file (``configs/sweeps/<name>.yaml``, or any path: the archived studies' sweeps are
``studies/<study>/<name>.yaml``)::

    description: one line
    pairs: [tiny-b-chainsum, tiny-a-mixed]
    strategies:
      - uniform                                   # a registered name ...
      - {name: dots, replay: true}                # ... or a mapping: rollout replay on
      - {name: oracle, set: [strategy.samples=8]} # per-strategy overrides
    seeds: [0, 1, 2]
    set: [train.threads=1, eval.every=5]          # overrides for every run
    targets: {tiny-b-chainsum: 0.43}              # optional; kept as sweep metadata for reports

Override order, later wins: the sweep's ``set``, the strategy entry's ``set``, its ``replay``.
Every run config is resolved and validated before anything starts, so a typo in entry 40 of 126
fails in a second instead of after hours. Execution lives in :mod:`harness.protocol.sweep_exec`,
the plan's cost estimate in :mod:`harness.protocol.sweepcost`.
"""

from __future__ import annotations

import dataclasses
import difflib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import config
from harness.config import RunConfig
from harness.config import files as configfiles
from harness.config.base import ConfigError, check, opt
from harness.runs import paths

# the states a run of the plan can be in, in the order the plan reports them
FINISHED, RESUME, NEW, BUSY = "finished", "resume", "new", "busy"


class SweepError(ValueError):
    """A bad sweep file or entry; the message names the file, the entry, the field and the fix."""


@dataclass
class StrategyItem:
    """One entry of ``strategies:`` in its long form."""

    name: str = opt("", "a registered strategy (`selbench list strategies`) or module:ENTRY")
    replay: bool | None = opt(None, "rollout replay on (true) or off (false); null: as configured")
    set: list[str] = opt(help="overrides for this strategy's runs, e.g. strategy.samples=8",
                         factory=list)


@dataclass
class SweepFile:
    """The top level of a sweep file."""

    description: str = opt("", "one line on what the sweep measures")
    pairs: list[str] = opt(help="pair names (`selbench list pairs`)", factory=list)
    strategies: list[Any] = opt(help="strategy names or {name, replay, set} mappings", factory=list)
    seeds: list[int] = opt(help="seeds; every pair x strategy runs once per seed", factory=list)
    set: list[str] = opt(help="overrides applied to every run, e.g. train.threads=1", factory=list)
    targets: dict[str, float] = opt(help="target accuracy per pair, kept for `selbench report`",
                                    factory=dict)


@dataclass
class SweepSpec:
    name: str
    path: Path
    description: str
    pairs: list[str]
    strategies: list[StrategyItem]
    seeds: list[int]
    overrides: list[str]
    targets: dict[str, float]
    text: str


@dataclass
class PlannedRun:
    """One run of the sweep, resolved and validated, with what the results folder knows of it."""

    pair: str
    strategy: str
    seed: int
    overrides: list[str]
    cfg: RunConfig
    entry: str  # where it comes from in the sweep file, for error messages and the plan
    state: str = NEW
    steps_logged: int = 0

    @property
    def run_id(self) -> str:
        return self.cfg.run_id()

    @property
    def label(self) -> str:
        return self.cfg.label()

    @property
    def steps(self) -> int:
        return self.cfg.train.steps

    @property
    def short(self) -> str:
        return f"{self.pair} {self.label} s{self.seed}"


@dataclass
class Plan:
    spec: SweepSpec
    runs: list[PlannedRun]
    results_root: Path
    counts: dict[str, int] = field(default_factory=dict)

    def todo(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.state != FINISHED]

    @property
    def meta_dir(self) -> Path:
        return self.results_root / "sweeps" / self.spec.name


# ---------------------------------------------------------------- the sweep file


def find_sweep_file(name_or_path: str, config_dir: Path | None = None) -> Path:
    """A path as given (relative to the working folder, else to the project, so that
    ``studies/<study>/<sweep>.yaml`` works from anywhere), or a bare name looked up as
    ``configs/sweeps/<name>.yaml``. Archived sweeps (``studies/*/*.yaml``) are run by path."""
    config_dir = config_dir or paths.CONFIG_DIR
    path = Path(name_or_path)
    if path.is_file():
        return path
    if not path.is_absolute() and (paths.PROJECT_ROOT / path).is_file():
        return paths.PROJECT_ROOT / path
    named = config_dir / "sweeps" / f"{name_or_path}.yaml"
    if "/" not in name_or_path and named.exists():
        return named
    names = config.list_names("sweeps", config_dir)
    # a live name is offered as itself, an archived sweep by the path that runs it
    offers = {n: n for n in names}
    for a in sorted(configfiles.ARCHIVE_DIR.glob("*/*.yaml")):
        offers.setdefault(a.stem, str(a.relative_to(configfiles.ARCHIVE_DIR.parent)))
    close = difflib.get_close_matches(path.stem, list(offers), n=1)
    hint = (f"did you mean '{offers[close[0]]}'?" if close
            else f"available: {', '.join(names) or 'none'}")
    raise SweepError(f"no sweep file '{name_or_path}' (nor {named}); {hint}")


def _strategy_item(raw: Any, where: str) -> StrategyItem:
    if isinstance(raw, str):
        return StrategyItem(name=raw)
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, "a strategy name or a mapping {name, replay, set}")
    item: StrategyItem = config.from_dict(StrategyItem, raw, where)
    check(bool(item.name), f"{where}.name", item.name, "a strategy name is required")
    return item


def load_spec(path: Path) -> SweepSpec:
    """Read and check the shape of a sweep file (the runs are validated by :func:`expand`)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = config.read_yaml(path)
        raw: SweepFile = config.from_dict(SweepFile, data)
        for key in ("pairs", "strategies", "seeds"):
            check(bool(getattr(raw, key)), key, getattr(raw, key), "a non-empty list")
        for i, seed in enumerate(raw.seeds):
            check(seed >= 0, f"seeds[{i}]", seed, "seeds are non-negative integers")
        check(len(set(raw.seeds)) == len(raw.seeds), "seeds", raw.seeds, "list each seed once")
        check(len(set(raw.pairs)) == len(raw.pairs), "pairs", raw.pairs, "list each pair once")
        items = [_strategy_item(s, f"strategies[{i}]") for i, s in enumerate(raw.strategies)]
        for pair, value in raw.targets.items():
            check(pair in raw.pairs, f"targets.{pair}", value,
                  f"a pair of this sweep ({', '.join(raw.pairs)})")
            check(isinstance(value, (int, float)) and not isinstance(value, bool)
                  and 0 <= value <= 1, f"targets.{pair}", value, "an accuracy in [0, 1]")
    except ConfigError as err:
        raise SweepError(f"{path}: {err}") from None
    return SweepSpec(name=path.stem, path=path, description=raw.description, pairs=raw.pairs,
                     strategies=items, seeds=raw.seeds, overrides=raw.set,
                     targets={k: float(v) for k, v in raw.targets.items()}, text=text)


# ---------------------------------------------------------------- expansion and validation


def _overrides(spec: SweepSpec, item: StrategyItem) -> list[str]:
    out = list(spec.overrides) + list(item.set)
    if item.replay is not None:
        out.append(f"replay.enabled={'true' if item.replay else 'false'}")
    return out


def expand(spec: SweepSpec, config_dir: Path | None = None) -> list[PlannedRun]:
    """Resolve and validate every run; all bad entries are reported together, one per line."""
    config_dir = config_dir or paths.CONFIG_DIR
    from strategies.registry import UnknownStrategyError

    runs: list[PlannedRun] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for i, pair in enumerate(spec.pairs):
        for j, item in enumerate(spec.strategies):
            where = f"pairs[{i}]={pair} x strategies[{j}]={item.name}"
            overrides = _overrides(spec, item)
            for seed in spec.seeds:
                try:
                    cfg = config.resolve(pair, item.name, seed=seed, overrides=overrides,
                                         config_dir=config_dir)
                except (ConfigError, UnknownStrategyError) as err:
                    msg = f"{spec.path}: {where}: {err}"
                    if msg not in errors:  # the same bad entry fails alike for every seed
                        errors.append(msg)
                    break
                run = PlannedRun(pair, item.name, seed, overrides, cfg, where)
                if run.run_id in seen:
                    errors.append(f"{spec.path}: {where} seed {seed} is the same run as "
                                  f"{seen[run.run_id]}: remove one of the two entries")
                    break
                seen[run.run_id] = f"{where} seed {seed}"
                runs.append(run)
    if errors:
        raise SweepError("\n".join(errors))
    return runs


def _lock_held(run_dir: Path) -> bool:
    """Whether another process holds the run's writer lock (see ``harness.executors.trainer.run``)."""
    lock_path = run_dir / ".lock"
    if not lock_path.exists():
        return False
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def logged_step(run_dir: Path) -> int:
    """The last step in the run's ``metrics.csv`` (0 if none); reads only the file's tail."""
    path = run_dir / "metrics.csv"
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        # a packed finished run (harness/protocol/pack.py) keeps its step count in summary.json
        try:
            return int(json.loads((run_dir / "summary.json").read_text()).get("steps", 0))
        except (FileNotFoundError, ValueError):
            return 0
    # the last line may be torn by a kill mid-write: take the last complete one that parses
    for line in reversed(tail.split("\n")[:-1]):
        head = line.split(",", 1)[0]
        if head.isdigit():
            return int(head)
    return 0


def run_state(run_dir: Path) -> str:
    if (run_dir / "summary.json").exists():
        return FINISHED
    if _lock_held(run_dir):
        return BUSY
    if (run_dir / "checkpoint" / "state.pt").exists():
        return RESUME
    return NEW


def make_plan(spec: SweepSpec, results_root: Path, config_dir: Path | None = None) -> Plan:
    runs = expand(spec, config_dir)
    for run in runs:
        run_dir = results_root / "runs" / run.run_id
        run.state = run_state(run_dir)
        run.steps_logged = logged_step(run_dir)
    counts = {s: sum(r.state == s for r in runs) for s in (FINISHED, RESUME, NEW, BUSY)}
    return Plan(spec, runs, results_root, counts)


def default_workers(runs: list[PlannedRun], cores: int | None = None) -> int:
    """One worker per ``train.threads`` cores; ``threads=0`` (torch's default: every core) -> 1."""
    cores = cores or len(os.sched_getaffinity(0))
    threads = max((r.cfg.train.threads for r in runs), default=1)
    return max(1, cores // threads) if threads else 1


def format_plan(plan: Plan, verbose: bool = False) -> str:
    from harness.protocol.sweepcost import estimate_cost  # here: sweepcost imports this module

    spec, c = plan.spec, plan.counts
    lines = [
        f"sweep {spec.name} ({spec.path}): {len(plan.runs)} runs = {len(spec.pairs)} pairs x "
        f"{len(spec.strategies)} strategies x {len(spec.seeds)} seeds -> {plan.results_root}",
        f"  {c[FINISHED]} finished (skipped), {c[RESUME]} to resume from a checkpoint, "
        f"{c[NEW]} new, {c[BUSY]} busy (another process is writing them)",
    ]
    cost = estimate_cost(plan)
    if cost:
        lines.append(f"  {cost}")
    if verbose:
        for run in plan.runs:
            lines.append(f"  {run.state:8s} {run.steps_logged:4d}/{run.steps:<4d} {run.run_id}")
    return "\n".join(lines)


def write_metadata(plan: Plan) -> Path:
    """``<results>/sweeps/<name>/sweep.json``: the sweep as run, its targets and its run ids."""
    spec = plan.spec
    meta = {
        "name": spec.name,
        "file": str(spec.path),
        "description": spec.description,
        "pairs": spec.pairs,
        "strategies": [dataclasses.asdict(s) for s in spec.strategies],
        "seeds": spec.seeds,
        "set": spec.overrides,
        "targets": spec.targets,
        "runs": [{"run_id": r.run_id, "pair": r.pair, "strategy": r.strategy, "label": r.label,
                  "seed": r.seed} for r in plan.runs],
        "yaml": spec.text,
    }
    plan.meta_dir.mkdir(parents=True, exist_ok=True)
    path = plan.meta_dir / "sweep.json"
    # a temporary name of our own: two sweeps of one name may start at the same moment
    tmp = path.with_name(f".sweep.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def missing_resources(plan: Plan) -> list[str]:
    """Unfinished runs whose strategy needs a fitted difficulty predictor that is not there
    (they would fail when they start, possibly hours into the sweep), one line per entry."""
    from harness.predictor.resources import artifact_dir
    from strategies.registry import get_entry

    problems: list[str] = []
    for run in plan.todo():
        if not get_entry(run.strategy).uses_predictor:
            continue
        where = artifact_dir(run.cfg)
        msg = (f"{plan.spec.path}: {run.entry}: no difficulty predictor at {where}: run "
               f"`selbench predictor fit --pair {run.pair}` first (or set predictor.artifact)")
        if not (where / "manifest.json").is_file() and msg not in problems:
            problems.append(msg)
    return problems
