"""The GRPO step's executor-independent half, written once for both executors.

An executor (the in-process trainer, the OpenRLHF controller) knows how to *sample* and how to
*update*; everything else in a step is here: how many fresh prompts the step asks for, the
strategy's selection and its validation, refills, the replay draw, the feedback to the strategy,
what goes into the replay buffer, the cost counters, the per-step metrics and the run summary.
A step reads::

    core.begin()                     # the phase clock starts
    ctx = ...                        # the executor's SelectionContext (harness.core.context)
    indices = core.select(ctx)       # validated; time/select
    ...sample, score, assemble...    # the executor, timing its phases on core.timer
    metrics = core.finish(step, batch, ctx.extra, stats)

so the records of both executors carry the same keys, computed by the same code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.config import RunConfig
from harness.core.replay import Group, ReplayBuffer
from harness.instrument import machine
from harness.runs.provenance import provenance
from strategies.base import StepFeedback

PHASES = ("select", "generate", "reward", "logprobs", "update")
# the matmul probe at each evaluation (harness.instrument.machine); under time/ with the other timings,
# which no determinism check compares
MACHINE_KEY = "time/machine_gflops"
# salts of the per-step random streams (harness.core.step.seed_for): the training rollouts, the
# evaluation draws and the replay draw; a context's own rollouts count up from CONTEXT_SALT
TRAIN_SALT, EVAL_SALT, REPLAY_SALT, CONTEXT_SALT = 0, 2, 3, 10


def seed_for(seed: int, step: int, salt: int) -> int:
    """A distinct, reproducible stream per (seed, step, purpose): resumed == uninterrupted."""
    return (seed * 1_000_003 + step * 7_919 + salt * 104_729) % (2**63 - 1)


@dataclass
class Counters:
    """Cumulative cost counters (kept in checkpoints)."""

    clock_s: float = 0.0
    prompts: int = 0
    samples: int = 0
    tokens_generated: int = 0
    tokens_trained: int = 0
    reference_prompts: int = 0
    reference_samples: int = 0
    verifier_failures: int = 0
    eval_s: float = 0.0
    extra_s: float = 0.0  # on-clock time of strategies' extra rollouts (part of clock_s)


@dataclass
class ExtraCost:
    """What a step's selection context paid for the strategy's own rollouts (references,
    screening, candidates): counted as cost, on the clock."""

    prompts: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, prompts: int, samples: int, tokens: int, seconds: float) -> None:
        self.prompts += prompts
        self.samples += samples
        self.tokens += tokens
        self.seconds += seconds


class PhaseTimer:
    """Wall-clock per phase of a step, lap by lap; every phase is on the clock."""

    def __init__(self) -> None:
        self.start = self.mark = time.perf_counter()
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    def lap(self, phase: str) -> None:
        """The time since the previous lap goes to ``phase``."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.mark
        self.mark = now

    def move(self, seconds: float, source: str, target: str) -> None:
        """Re-book ``seconds`` of ``source`` as ``target`` (a phase timed inside another)."""
        self.seconds[source] -= seconds
        self.seconds[target] = self.seconds.get(target, 0.0) + seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@dataclass
class Batch:
    """What one step trained on, as the executor assembled it.

    ``feedback`` holds each selected prompt (in the order the step trained them) with every
    reward observed for it (all n of a down-sampled prompt); ``trained`` the rewards of the
    groups trained, the selected prompts' first, then the replayed ones'."""

    feedback: StepFeedback
    trained: np.ndarray  # [groups trained, G]
    replayed: list[Group]
    new_prompts: int  # prompts rolled out for training this step (not the context's own)
    samples: int  # responses generated for them (n per prompt for a rollout selector)
    tokens_generated: int
    tokens_trained: int
    responses_trained: int
    reused_groups: int = 0  # groups the context rolled out with reuse=True and the step trained
    discarded_samples: int | None = None  # sampled but not trained (rollout selectors)
    to_replay: list[Group] = field(default_factory=list)  # offered to the buffer, newest last

    @property
    def indices(self) -> list[int]:
        return [g.index for g in self.feedback.groups]


def tier_names(tiers: np.ndarray) -> list[str]:
    """The pool's tier names in first-seen order (none for a pool without tiers)."""
    return [n for n in dict.fromkeys(tiers.tolist()) if n]


def tier_shares(prefix: str, tiers: np.ndarray, names: list[str],
                indices: list[int]) -> dict[str, float]:
    """Share of ``indices`` in each of the pool's tiers ``names``, every tier named (zeros
    included) so means over steps are shares of the whole run; empty for a pool without tiers
    or no indices."""
    if not names or not indices:
        return {}
    picked = tiers[np.asarray(indices, dtype=np.int64)]
    return {f"{prefix}/{n}": float(np.mean(picked == n)) for n in names}


class StepCore:
    """A run's strategy, replay buffer, counters and per-prompt selection counts, and the parts
    of a step that act on them. ``tiers``: each pool question's difficulty tier ("" if none)."""

    def __init__(self, cfg: RunConfig, strategy: Any, tiers: Sequence[str]) -> None:
        self.cfg = cfg
        self.strategy = strategy
        self.tiers = np.asarray([str(t) for t in tiers])
        self.tier_names = tier_names(self.tiers)
        self.pool_size = len(self.tiers)
        self.replay = ReplayBuffer(cfg.replay.capacity) if cfg.replay.enabled else None
        self.counters = Counters()
        # how often each pool prompt was picked fresh: repeats are what a tiny policy memorises
        self.times_selected = np.zeros(self.pool_size, dtype=np.int64)
        self.timer = PhaseTimer()

    # ------------------------------------------------------------------ selection

    def begin(self) -> PhaseTimer:
        """Start a step's phase clock."""
        self.timer = PhaseTimer()
        return self.timer

    def fresh_count(self) -> int:
        """B fresh prompts, or sigma * B once the replay buffer can fill the rest."""
        t, r = self.cfg.train, self.cfg.replay
        if self.replay is None:
            return t.batch_size
        n_fresh = max(1, round(r.sigma * t.batch_size))
        return n_fresh if len(self.replay) >= t.batch_size - n_fresh else t.batch_size

    def select(self, ctx: Any, n: int | None = None) -> list[int]:
        """The strategy's ``n`` prompts (default :meth:`fresh_count`), validated; the time goes
        to ``time/select``."""
        n = self.fresh_count() if n is None else n
        indices = [int(i) for i in self.strategy.select(ctx, n)]
        if len(indices) != n or len(set(indices)) != n or not all(0 <= i < self.pool_size
                                                                    for i in indices):
            raise RuntimeError(
                f"strategy '{self.cfg.strategy_name}' returned an invalid selection at step "
                f"{ctx.step}: expected {n} distinct indices in [0, {self.pool_size}), got "
                f"{len(indices)} ({len(set(indices))} distinct)")
        self.timer.lap("select")
        return indices

    def refill(self, ctx: Any, taken: set[int], tries: int = 8) -> Callable[[int], list[int]]:
        """Dynamic-filtering refills: ``k`` more prompts from the strategy, none used this step
        (an empty list when it keeps offering used ones: the step ends short)."""
        def more(k: int) -> list[int]:
            for _ in range(tries):
                fresh = [int(i) for i in self.strategy.select(ctx, k) if int(i) not in taken]
                if fresh:
                    taken.update(fresh[:k])
                    return fresh[:k]
            return []
        return more

    def replay_draw(self, step: int, n: int, exclude: set[int]) -> list[Group]:
        """``n`` groups from the buffer (none of ``exclude``), from the step's replay stream."""
        if self.replay is None:
            return []
        import torch

        gen = torch.Generator().manual_seed(seed_for(self.cfg.seed, step, REPLAY_SALT))
        return self.replay.sample(n, gen, exclude=exclude)

    # ------------------------------------------------------------------ the step's end

    def _predicted(self, indices: list[int]) -> np.ndarray | None:
        fn = getattr(self.strategy, "predicted_pass_rates", None)
        pred = None if fn is None else fn(indices)
        return None if pred is None else np.asarray(pred, dtype=np.float64)

    def finish(self, step: int, batch: Batch, extra: ExtraCost,
               executor_metrics: dict[str, float] | None = None) -> dict[str, float]:
        """Feedback to the strategy, the replay buffer, the counters; the step's metrics."""
        t, c = self.cfg.train, self.counters
        self.strategy.update(batch.feedback)
        indices = batch.indices
        predicted = self._predicted(indices)
        if self.replay is not None:
            self.replay.add(batch.to_replay)
        self.timer.lap("select")
        step_s = self.timer.elapsed()

        c.clock_s += step_s
        c.extra_s += extra.seconds
        c.prompts += batch.new_prompts + extra.prompts
        c.samples += batch.samples + extra.samples
        c.tokens_generated += batch.tokens_generated + extra.tokens
        c.tokens_trained += batch.tokens_trained
        c.reference_prompts += extra.prompts
        c.reference_samples += extra.samples
        n_sel = len(indices)
        sel_trained = batch.trained[:n_sel]
        observed = np.array([np.mean(g.rewards) for g in batch.feedback.groups])
        # the observed pass rate: of the trained G, or of all n where more were observed
        all_trained = all(len(g.rewards) == t.group_size for g in batch.feedback.groups)
        observed_rate = float(sel_trained.mean()) if all_trained and n_sel else (
            float(np.mean(observed)) if n_sel else 0.0)
        zero_std = float(np.mean(sel_trained.std(axis=1) == 0)) if n_sel else 0.0
        repeat_frac = float(np.mean(self.times_selected[indices] > 0)) if n_sel else 0.0
        self.times_selected[indices] += 1
        metrics = {f"time/{p}": s for p, s in self.timer.seconds.items()}
        metrics.update({
            "time/step": step_s,
            "time/clock": c.clock_s,
            "time/extra_rollouts": extra.seconds,
            "cost/prompts": batch.new_prompts,
            "cost/samples": batch.samples,
            "cost/tokens_generated": batch.tokens_generated + extra.tokens,
            "cost/tokens_trained": batch.tokens_trained,
            "cost/reference_prompts": extra.prompts,
            "cost/reference_samples": extra.samples,
            "cost/reused_groups": batch.reused_groups,
            "cum/samples": c.samples,
            "cum/tokens": c.tokens_generated + c.tokens_trained,
            "train/reward_mean": float(batch.trained.mean()),
            "train/zero_std_frac": zero_std,
            # the strategy's quality: share of *selected* prompts whose group was informative
            "train/effective_frac": 1.0 - zero_std,
            "train/batch_effective_frac": float(np.mean(batch.trained.std(axis=1) > 0)),
            "train/response_len": batch.tokens_trained / max(1, batch.responses_trained),
            "select/observed_pass_rate": observed_rate,
            # share of this step's prompts trained on before in the run, and distinct so far
            "select/repeat_frac": repeat_frac,
            "select/distinct_total": float(np.count_nonzero(self.times_selected)),
            "verifier/failures": c.verifier_failures,
            **(executor_metrics or {}),
        })
        if batch.discarded_samples is not None:
            metrics["cost/discarded_samples"] = batch.discarded_samples
        if predicted is not None:
            metrics["select/predicted_pass_rate"] = float(np.mean(predicted))
            metrics["select/prediction_abs_err"] = float(np.mean(np.abs(predicted - observed)))
        replayed = [g.index for g in batch.replayed]
        metrics.update(tier_shares("train/tier_share", self.tiers, self.tier_names,
                                   indices + replayed))
        if self.replay is not None:
            metrics.update(tier_shares("replay/tier_share", self.tiers, self.tier_names, replayed))
            metrics.update({
                "replay/share": len(batch.replayed) / t.batch_size,
                "replay/buffer_size": len(self.replay),
                "replay/age_mean": (float(np.mean([step - g.step for g in batch.replayed]))
                                    if batch.replayed else 0.0),
            })
        return metrics

    def probe_machine(self) -> float:
        """The machine's matmul speed now, off the clock (counted with the evaluation)."""
        start = time.perf_counter()
        gflops = machine.matmul_gflops()
        self.counters.eval_s += time.perf_counter() - start
        return gflops

    def log_eval(self, record: Any, step: int, accuracy: float, seconds: float) -> None:
        """One row of the evaluation curve, at the counters' current cost."""
        c = self.counters
        c.eval_s += seconds
        record.log_eval({"step": step, "clock_s": c.clock_s, "samples": c.samples,
                         "tokens": c.tokens_generated + c.tokens_trained, "accuracy": accuracy,
                         "extra_s": c.extra_s})

    # ------------------------------------------------------------------ state and summary

    def state_dict(self) -> dict[str, Any]:
        return {"counters": asdict(self.counters),
                "strategy": json.dumps(self.strategy.state_dict()),
                "replay": None if self.replay is None else self.replay.state_dict(),
                "times_selected": self.times_selected.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counters = Counters(**state["counters"])
        self.strategy.load_state_dict(json.loads(state["strategy"]))
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"])
        if state.get("times_selected") is not None:  # older checkpoints start from zero
            self.times_selected = np.asarray(state["times_selected"], dtype=np.int64)

    def summary(self, step: int, curve: list[dict[str, Any]], probes: list[float],
                executor: str, code_commit: str | None = None,
                **extra: Any) -> dict[str, Any]:
        """``summary.json``: the run's identity, its curve's ends and its cost; ``probes`` the
        machine-speed probes read back from the records (a resumed run keeps its first part's)."""
        cfg, c = self.cfg, self.counters
        return {
            "run_id": cfg.run_id(),
            "pair": cfg.pair,
            "strategy": cfg.strategy_name,
            "replay": cfg.replay.enabled,
            "label": cfg.label(),
            "seed": cfg.seed,
            "steps": step,
            "initial_accuracy": curve[0]["accuracy"],
            "final_accuracy": curve[-1]["accuracy"],
            "best_accuracy": max(r["accuracy"] for r in curve),
            "clock_s": c.clock_s,
            "extra_s": c.extra_s,
            "eval_s": c.eval_s,
            "samples": c.samples,
            "tokens_generated": c.tokens_generated,
            "tokens_trained": c.tokens_trained,
            "reference_samples": c.reference_samples,
            "verifier_failures": c.verifier_failures,
            # median over the run's evaluations; None when it was never probed
            "machine_gflops": float(np.median(probes)) if probes else None,
            "executor": executor,
            **extra,
            **provenance(code_commit),
        }
