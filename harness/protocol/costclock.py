"""The cost clock: a run's time from its counted work, not from how busy the machine was.

Wall-clock (``eval.csv`` ``clock_s``) is the paper's metric, but on a shared CPU it measures the
neighbours too: the report's matmul probe has read 50 and 30 GFLOP/s for the two arms of one
demo. The cost clock charges every step its counted work (``metrics.csv`` ``cost/*``) at
per-unit prices measured once on a quiet machine:

    rollout   (time/generate + time/reward + time/extra_rollouts)
              = gen_token x cost/tokens_generated (fresh and reference/extra rollouts)
              + gen_sample x (cost/samples + cost/reference_samples)
    training  (time/logprobs + time/update)
              = train_token x cost/tokens_trained + train_step
    selection (time/select - time/extra_rollouts: the strategy's own compute, e.g. the DOTS
              predictor, and the replay buffer's bookkeeping)
              = select_s[label] per step, the calibration runs' mean for that strategy label
              (label without its ``@variant``); a label the calibration did not run is charged
              its measured selection seconds x the run's GFLOP/s / the calibration's (the
              probe's correction to the calibration machine, noted in the report)

Prices are fitted by non-negative least squares of each phase's per-step seconds on its counts
over every step of the calibration runs (``fit``), and stored with the records as
``RESULTS/calibration.json`` (``selbench calibrate``). The same prices apply to every arm, so an
arm's cost clock does not depend on the load during its own runs; scaling a run's phase times
(a busier machine) leaves its cost clock unchanged. Torch-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CALIBRATION_FILE = "calibration.json"
# metrics.csv keys the cost clock reads, per step
STEP_KEYS = ["time/select", "time/generate", "time/reward", "time/logprobs", "time/update",
             "time/extra_rollouts", "cost/tokens_generated", "cost/tokens_trained",
             "cost/samples", "cost/reference_samples"]
UNITS = ("gen_token", "gen_sample", "train_token", "train_step")


@dataclass
class Calibration:
    """Seconds per unit of counted work, and per step of each strategy's selection."""

    units: dict[str, float]
    select_s: dict[str, float]
    machine_gflops: float  # median probe over the calibration runs (nan: not probed)
    runs: list[str] = field(default_factory=list)
    steps: int = 0
    r2: dict[str, float] = field(default_factory=dict)
    method: str = ""
    note: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        d = json.loads(text)
        missing = [u for u in UNITS if u not in d.get("units", {})]
        if missing:
            raise ValueError(f"calibration lacks unit costs {missing}: refit it with "
                             "`selbench calibrate`")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def base_label(label: str) -> str:
    """``dots+rr@cap128`` -> ``dots+rr``: variants share a selection price."""
    return label.split("@", 1)[0]


def step_table(metrics: Iterable[tuple[int, str, float]]) -> pd.DataFrame:
    """One run's ``(step, name, value)`` rows -> one row per step with ``STEP_KEYS`` columns
    (missing keys 0: e.g. records from before reference samples were counted). Empty when the
    records have no ``cost/`` counts at all."""
    rows: dict[int, dict[str, float]] = {}
    seen = False
    for step, name, value in metrics:
        if name in STEP_KEYS:
            rows.setdefault(int(step), {})[name] = float(value)
            seen = seen or name.startswith("cost/")
    if not seen:
        return pd.DataFrame(columns=["step", *STEP_KEYS])
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=STEP_KEYS).fillna(0.0)
    return frame.rename_axis("step").reset_index().sort_values("step", kind="stable")


def _phases(t: pd.DataFrame) -> dict[str, np.ndarray]:
    extra = t["time/extra_rollouts"].to_numpy()
    return {"rollout": (t["time/generate"] + t["time/reward"]).to_numpy() + extra,
            "training": (t["time/logprobs"] + t["time/update"]).to_numpy(),
            "selection": np.maximum(t["time/select"].to_numpy() - extra, 0.0)}


def _design(t: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"rollout": np.stack([t["cost/tokens_generated"].to_numpy(),
                                 (t["cost/samples"] + t["cost/reference_samples"]).to_numpy()],
                                axis=1),
            "training": np.stack([t["cost/tokens_trained"].to_numpy(), np.ones(len(t))], axis=1)}


def _nnls(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative least squares on unit-scaled columns (counts of tokens and of steps differ
    by orders of magnitude); returns the coefficients and R^2."""
    from scipy.optimize import nnls

    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(x / scale, y)
    coef = coef / scale
    resid = y - x @ coef
    tot = float(np.sum((y - y.mean()) ** 2))
    return coef, (1.0 - float(np.sum(resid ** 2)) / tot) if tot > 0 else math.nan


def _probe_factor(run_gflops: float, cal_gflops: float) -> float:
    """Seconds measured at the run's machine speed -> seconds at the calibration's."""
    ok = math.isfinite(run_gflops) and math.isfinite(cal_gflops) and cal_gflops > 0
    return run_gflops / cal_gflops if ok else 1.0


def fit(runs: Mapping[str, tuple[str, pd.DataFrame]], machine_gflops: float = math.nan,
        note: str = "", run_gflops: Mapping[str, float] | None = None) -> Calibration:
    """Per-unit costs from calibration runs: ``runs`` maps run_id to (label, ``step_table``).
    Selection prices are per label, so runs of one label on a slower machine would price that
    label alone higher: with ``run_gflops`` (run_id -> probe) each run's selection seconds are
    first brought to ``machine_gflops``."""
    run_gflops = dict(run_gflops or {})
    tables = [(label, t, _probe_factor(run_gflops.get(rid, math.nan), machine_gflops))
              for rid, (label, t) in runs.items() if len(t)]
    if not tables:
        raise ValueError("no calibration run has per-step cost counts (metrics.csv cost/*)")
    allt = pd.concat([t for _, t, _ in tables], ignore_index=True)
    phases, design = _phases(allt), _design(allt)
    gen, r2_gen = _nnls(design["rollout"], phases["rollout"])
    train, r2_train = _nnls(design["training"], phases["training"])
    select_s: dict[str, list[np.ndarray]] = {}
    for label, t, factor in tables:
        select_s.setdefault(base_label(label), []).append(_phases(t)["selection"] * factor)
    return Calibration(
        units={"gen_token": float(gen[0]), "gen_sample": float(gen[1]),
               "train_token": float(train[0]), "train_step": float(train[1])},
        select_s={k: float(np.mean(np.concatenate(v))) for k, v in sorted(select_s.items())},
        machine_gflops=float(machine_gflops), runs=sorted(runs), steps=len(allt),
        r2={"rollout": r2_gen, "training": r2_train},
        method=("non-negative least squares over every step of the calibration runs: rollout "
                "seconds (time/generate + time/reward + time/extra_rollouts) on generated "
                "tokens and samples (reference/extra included); training seconds "
                "(time/logprobs + time/update) on trained tokens and a per-step constant; "
                "selection seconds (time/select - time/extra_rollouts) as the mean per step of "
                "each strategy label"),
        note=note)


@dataclass
class StepCost:
    """Per-step cost-clock seconds of one run; ``extra`` is the part spent on reference/extra
    rollouts (for off-clock accountings), ``select_fallback`` says the selection price was not
    calibrated for this label (its measured time, probe-corrected, was used instead)."""

    steps: np.ndarray
    seconds: np.ndarray
    extra: np.ndarray
    select_fallback: bool


def step_costs(t: pd.DataFrame, label: str, cal: Calibration,
               run_gflops: float = math.nan) -> StepCost:
    u = cal.units
    smp = (t["cost/samples"] + t["cost/reference_samples"]).to_numpy()
    rollout = u["gen_token"] * t["cost/tokens_generated"].to_numpy() + u["gen_sample"] * smp
    training = u["train_token"] * t["cost/tokens_trained"].to_numpy() + u["train_step"]
    key = base_label(label)
    fallback = key not in cal.select_s
    if fallback:
        selection = _phases(t)["selection"] * _probe_factor(run_gflops, cal.machine_gflops)
    else:
        selection = np.full(len(t), cal.select_s[key])
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_share = np.where(smp > 0, t["cost/reference_samples"].to_numpy() / smp, 0.0)
    return StepCost(t["step"].to_numpy(), rollout + training + selection, rollout * ref_share,
                    fallback)


def at_evals(cost: StepCost, eval_steps: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative cost-clock seconds (total, extra part) after each evaluation step (step 0: 0)."""
    order = np.argsort(cost.steps, kind="stable")
    steps = cost.steps[order]
    total = np.concatenate([[0.0], np.cumsum(cost.seconds[order])])
    extra = np.concatenate([[0.0], np.cumsum(cost.extra[order])])
    idx = np.searchsorted(steps, np.asarray(list(eval_steps), dtype=float), side="right")
    return total[idx], extra[idx]


def load(path: Path) -> Calibration:
    try:
        return Calibration.from_json(Path(path).read_text())
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"unreadable calibration {path}: {err}") from err


def calibrate_folder(results: Path, note: str = "", labels: Iterable[str] = ()) -> Calibration:
    """Fit on the finished runs under ``results/runs`` (only ``labels`` when given) and write
    ``results/calibration.json``. Run it on runs made on a quiet machine (nothing else running,
    one run at a time or a known fixed share of cores) and say so in ``note``."""
    from harness.runs.records import RunRecord

    wanted = set(labels)
    runs: dict[str, tuple[str, pd.DataFrame]] = {}
    probes: dict[str, float] = {}
    for run_dir in sorted(p for p in (Path(results) / "runs").glob("*") if p.is_dir()):
        rec = RunRecord(run_dir)
        if not rec.finished:
            continue
        s = json.loads(rec.summary_path.read_text())
        label = s.get("label") or s["strategy"] + ("+rr" if s.get("replay") else "")
        if wanted and label not in wanted:
            continue
        run_id = s.get("run_id", run_dir.name)
        runs[run_id] = (label, step_table(rec.read_metrics()))
        if s.get("machine_gflops") is not None:
            probes[run_id] = float(s["machine_gflops"])
    if not runs:
        raise ValueError(f"no finished runs to calibrate on under {Path(results) / 'runs'}")
    cal = fit(runs, float(np.median(list(probes.values()))) if probes else math.nan, note,
              probes)
    (Path(results) / CALIBRATION_FILE).write_text(cal.to_json() + "\n")
    return cal
