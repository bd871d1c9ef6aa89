"""The in-process executor: real GRPO with torch + transformers on one CPU or GPU.

One step: ask the strategy for prompts; sample G responses each (a rollout selector such as
PODS gets n >= G and keeps G of them); score them; group-normalised advantages; PPO-clip update
over mini-batches; feed the rewards back to the strategy.
Evaluation runs with the clock stopped. The GRPO math itself lives in :mod:`harness.core.grpo`,
the optimizer, learning-rate schedule and PPO-clip loop in :mod:`harness.executors.inprocess_update`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.config import RunConfig, dump
from harness.core import grpo
from harness.core.context import ContextBase, KeptGroups
from harness.core.replay import Group, ReplayBuffer, collate, join_groups, split_groups
from harness.core.rollout import Rollouts, take_rows
from harness.core.sampler import Sampler, device_for, exact_pass_rates  # noqa: F401 (re-export)
from harness.core.step import (  # noqa: F401 (PHASES, MACHINE_KEY, seed_for: re-exported)
    CONTEXT_SALT,
    EVAL_SALT,
    MACHINE_KEY,
    PHASES,
    TRAIN_SALT,
    Batch,
    Counters,
    StepCore,
    seed_for,
)
from harness.executors import inprocess_update as update
from harness.instrument import policy, positions
from harness.instrument.tasks import Pool, check_pool_size, load_pool
from harness.predictor.resources import predictor_dir
from harness.runs import fingerprint, progress
from harness.runs.provenance import git_commit
from harness.runs.records import RunBusyError, RunRecord, atomic_save, folder_lock  # noqa: F401 (re-export)
from harness.runs.watch import Watch
from strategies.base import GroupFeedback, RolloutSelector, StepFeedback, selects_rollouts
from strategies.registry import build_strategy, get_entry


class _Context(ContextBase):
    """The selection context a strategy sees: step, pool size, paid extra rollouts, predictor."""

    def __init__(self, trainer: Trainer, step: int) -> None:
        super().__init__(trainer.cfg, len(trainer.pool.train), trainer.scorer, step)
        self._trainer = trainer
        self._calls = 0
        # reuse=True groups of this step, by pool index; smaller rollouts of a prompt add up to G
        self._kept: KeptGroups[Group] = KeptGroups(self.group_size, join_groups,
                                                   lambda grp: len(grp.responses))

    @property
    def kept(self) -> dict[int, Group]:
        return self._kept.complete

    def rollout(self, indices: Sequence[int], n_samples: int, reuse: bool = False) -> list[list[float]]:
        indices = [int(i) for i in indices]
        self._calls += 1  # each call of a step draws from its own stream
        start = time.perf_counter()
        ro, rewards = self._trainer.rollout_and_score(indices, n_samples, self._step,
                                                      salt=CONTEXT_SALT + self._calls)
        self.extra.add(len(indices), len(indices) * n_samples, ro.num_tokens,
                       time.perf_counter() - start)
        if reuse:
            for grp in split_groups(ro, indices, rewards, self._step):
                self._kept.add(grp.index, grp)
        return rewards.tolist()


def compile_wanted() -> bool:
    """``SELBENCH_COMPILE=1`` in the environment."""
    import os

    return os.environ.get("SELBENCH_COMPILE", "") == "1"


def compile_policy(model: torch.nn.Module, enabled: bool) -> bool:
    """``torch.compile`` the policy's forward (dynamic shapes) for every phase that calls it,
    when ``enabled``; returns ``enabled``. An execution switch, like the thread count, not a
    config field: fused kernels round differently, so results agree with eager ones to the
    last digits only (``selbench recheck`` measures it); the summary says ``compiled``."""
    if not enabled:
        return False
    # one graph per grad mode, train/eval mode and the 0/1 sizes dynamo specialises (a lone
    # row left decoding): the default limit of 8 is met within a run, and past it dynamo
    # silently runs eager
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # torch < 2.7
    setattr(dynamo, limit, max(32, getattr(dynamo, limit)))
    model.forward = torch.compile(model.forward, dynamic=True)  # type: ignore[method-assign]
    return True


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, progress: bool = True,
                 compiled: bool | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.record = RunRecord(run_dir)
        # the code this process loaded: the tree may change while the run goes on
        self.code_commit = git_commit()
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        # the pool first: bad data fails in a second, before minutes of model building
        self.pool: Pool = load_pool(cfg.task, cfg.pair)
        check_pool_size(self.pool, cfg.train.batch_size, "train.batch_size")
        # prompts that do not fit the model's positions, counted with its tokenizer
        self.pool = positions.fit_for_model(self.pool, cfg, progress=progress)
        check_pool_size(self.pool, cfg.train.batch_size, "train.batch_size")
        # a resume on other data than the run started with stops here, before the model loads
        self.data = fingerprint.fingerprint(cfg.task, self.pool, predictor_dir(cfg))
        fingerprint.check(self.record.root, self.data)
        self.device = device_for(cfg.train.device)
        self.model, self.tokenizer, self.model_path = policy.load(cfg.model, progress=progress)
        self.model.to(self.device)
        self.model.train()
        # None: as SELBENCH_COMPILE says
        self.compiled = compile_policy(self.model, compile_wanted() if compiled is None
                                       else compiled)
        # the policy's sampling and scoring on the pool (shared with the probe and evaluation)
        self.sampler = Sampler(cfg, self.pool, self.model, self.tokenizer, self.model_path)
        self.sampler.on_verifier_failures = self._count_verifier_failures
        # difficulty tier of each pool question ("" when the pool has none): the per-step records
        # say which tiers a strategy trains on, beside the held-out accuracy per tier
        train_tiers = [str(q.meta.get("tier", "")) for q in self.pool.train]
        strategy = build_strategy(
            cfg.strategy_name, {k: v for k, v in cfg.strategy.items() if k != "name"},
            pool_size=len(self.pool.train), seed=cfg.seed,
        )
        # the strategy, replay buffer, counters and the step's bookkeeping (harness.core.step)
        self.core = StepCore(cfg, strategy, train_tiers)
        self.optimizer = update.make_optimizer(self.model, cfg.train)
        self.ref_model = update.reference_model(self.model, cfg.train)  # None: no KL penalty
        self.scorer = None
        if get_entry(cfg.strategy_name).uses_predictor:
            # embedding the pool and projecting it once is set-up, like loading the model:
            # off the clock; each round's scoring happens inside select, on it
            from harness.predictor.resources import load_scorer

            self.scorer = load_scorer(cfg, [q.text for q in self.pool.train], self.model_path)
        self.step = 0

    @property
    def strategy(self) -> Any:
        return self.core.strategy

    @property
    def replay(self) -> ReplayBuffer | None:
        return self.core.replay

    @property
    def counters(self) -> Counters:
        return self.core.counters

    def _count_verifier_failures(self, n: int) -> None:
        self.core.counters.verifier_failures += n

    # sampling is the sampler's; these names are what the predictor fit, scripts and tests use
    def rollout_and_score(self, indices: list[int], n_samples: int, step: int,
                          salt: int) -> tuple[Rollouts, np.ndarray]:
        """``n_samples`` responses for each training-pool index; rewards [len(indices), n]."""
        return self.sampler.rollout_and_score(indices, n_samples, step, salt)

    def evaluate(self) -> tuple[float, dict[str, float]]:
        """Held-out accuracy, overall and per tier, of the current policy. Off the clock."""
        return self.sampler.evaluate()

    @property
    def train_tokens(self) -> list[list[int]]:
        return self.sampler.train_tokens

    # ------------------------------------------------------------------ one step

    def train_step(self, step: int) -> dict[str, float]:
        t, core = self.cfg.train, self.core
        timer = core.begin()
        ctx = _Context(self, step)
        indices = core.select(ctx)

        kept = {i: ctx.kept[i] for i in indices if i in ctx.kept}
        new = [i for i in indices if i not in kept]
        # a rollout selector (PODS) samples n >= G responses per prompt and trains on G of them
        selector = self.strategy if selects_rollouts(self.strategy) else None
        n_draw = selector.samples_per_prompt(t.group_size) if selector is not None else t.group_size
        ro, texts = self.sampler.generate(new, n_draw, step, salt=TRAIN_SALT) if new else (None, [])
        gen_tokens = ro.num_tokens if ro is not None else 0
        work = {"generate": dict(ro.work) if ro is not None else {}, "logprobs": {}, "update": {}}
        timer.lap("generate")
        fresh_rewards = self.sampler.rewards(new, n_draw, texts) if new else np.zeros((0, t.group_size))
        observed: dict[int, np.ndarray] = {}  # all n rewards of down-sampled prompts
        if selector is not None and new:
            assert ro is not None
            observed = dict(zip(new, fresh_rewards, strict=True))
            ro, fresh_rewards = self._down_sample(selector, ro, fresh_rewards)
        replayed: list[Group] = []
        fresh: list[Group] = []  # the selected prompts' groups, when the batch is re-collated
        if self.replay is None and not kept:
            assert ro is not None
            rewards, replay_rows = fresh_rewards, None  # the plain GRPO path, untouched
        else:
            by_index = dict(zip(new, split_groups(ro, new, fresh_rewards, step), strict=True)) if new else {}
            fresh = [kept.get(i) or by_index[i] for i in indices]
            replayed = core.replay_draw(step, t.batch_size - len(indices), exclude=set(indices))
            groups = fresh + replayed
            if len(groups) != t.batch_size:
                raise RuntimeError(f"replay could fill only {len(groups)} of {t.batch_size} prompts")
            ro = collate(groups, self.sampler.pad_id).to(self.device)
            rewards = np.array([grp.rewards for grp in groups], dtype=np.float64)
            replay_rows = torch.tensor([k >= len(fresh) for k, grp in enumerate(groups)
                                        for _ in grp.responses], device=self.device)
        adv = grpo.group_norm_advantages(torch.tensor(rewards, dtype=torch.float32,
                                                      device=self.device)).reshape(-1)
        timer.lap("reward")

        if t.mini_batch_size == t.batch_size:
            # One optimizer step per generation: the policy has not moved when the loss is
            # taken, so the old log-probs are the training forward's own, detached (ratio 1,
            # same gradient; TRL does the same). That saves a full forward over B*G sequences.
            # Several mini-batches need them from before the first step: see _old_logprobs.
            old_logp, ref_logp = None, self._ref_logprobs(ro, work["logprobs"])
        else:
            old_logp, ref_logp = self._old_logprobs(ro, work["logprobs"])
        timer.lap("logprobs")

        stats = self._update(ro, adv, old_logp, ref_logp, step, replay_rows, work["update"])
        timer.lap("update")

        feedback = StepFeedback(step=step, groups=tuple(
            GroupFeedback(index=i, rewards=tuple(float(r) for r in observed.get(i, row)))
            for i, row in zip(indices, rewards[:len(indices)], strict=True)))
        unused = [grp for i, grp in ctx.kept.items() if i not in kept]
        batch = Batch(feedback=feedback, trained=rewards, replayed=replayed, new_prompts=len(new),
                      samples=len(new) * n_draw, tokens_generated=gen_tokens,
                      tokens_trained=ro.num_tokens, responses_trained=ro.response_ids.shape[0],
                      reused_groups=len(kept),
                      discarded_samples=(len(new) * (n_draw - t.group_size)
                                         if selector is not None else None),
                      to_replay=unused + fresh)  # newest last: they are evicted last
        return core.finish(step, batch, ctx.extra, {
            **{f"train/{k}": v for k, v in stats.items()},
            # positions the model ran on per phase, real tokens (each distinct prompt once, each
            # response token that predicts another) and with padding: the padding's share is
            # the waste a packed batch would not compute
            **{f"tokens/{phase}_{kind}": n for phase, counts in work.items()
               for kind, n in counts.items()},
        })

    def _down_sample(self, selector: RolloutSelector, ro: Rollouts,
                     rewards: np.ndarray) -> tuple[Rollouts, np.ndarray]:
        """Keep the G responses per prompt that ``selector`` chooses from its n (rows of ``ro``
        are n consecutive responses per prompt, rewards shaped [prompts, n])."""
        g, n = self.cfg.train.group_size, rewards.shape[1]
        rows: list[int] = []
        for k, row in enumerate(rewards):
            chosen = [int(j) for j in selector.choose_rollouts(row.tolist(), g)]
            if len(chosen) != g or len(set(chosen)) != g or not all(0 <= j < n for j in chosen):
                raise RuntimeError(f"strategy '{self.cfg.strategy_name}' chose an invalid set of "
                                   f"rollouts: expected {g} distinct positions in [0, {n}), got {chosen}")
            rows.extend(k * n + j for j in chosen)
        kept_rewards = rewards.reshape(-1)[rows].reshape(len(rewards), g)
        return take_rows(ro, rows), kept_rewards

    # the update itself is harness.executors.inprocess_update's; train_step and tests use these names
    def _old_logprobs(self, ro: Rollouts, work: dict[str, int] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.model.eval()
        return update.logprobs_under(self.model, ro, self.cfg.train, work), self._ref_logprobs(ro, work)

    def _ref_logprobs(self, ro: Rollouts, work: dict[str, int] | None = None
                      ) -> torch.Tensor | None:
        return (None if self.ref_model is None
                else update.logprobs_under(self.ref_model, ro, self.cfg.train, work))

    def _update(self, ro: Rollouts, adv: torch.Tensor, old_logp: torch.Tensor | None,
                ref_logp: torch.Tensor | None, step: int = 1,
                replay_rows: torch.Tensor | None = None,
                work: dict[str, int] | None = None) -> dict[str, float]:
        """PPO-clip over mini-batches (:func:`~harness.executors.inprocess_update.ppo_update`)."""
        stats = update.ppo_update(self.model, self.optimizer, self.cfg.train, ro, adv, old_logp,
                                  ref_logp, step, replay_rows, work)
        self.sampler.sync()  # a vLLM engine samples from its own copy: push the new weights
        return stats

    # ------------------------------------------------------------------ evaluation

    def _eval_and_log(self, step: int) -> float:
        start = time.perf_counter()
        acc, by_tier = self.evaluate()
        self.core.log_eval(self.record, step, acc, time.perf_counter() - start)
        if by_tier:
            self.record.log_eval_tiers(step, by_tier)
        return acc

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        ckpt = self.record.checkpoint_dir
        ckpt.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "verifier": {"failures": self.pool.verifier.failures},
            **self.core.state_dict(),  # counters, strategy, replay, times_selected
        }
        # a kill or a full disk mid-save leaves the previous checkpoint whole
        atomic_save(ckpt / "state.pt", lambda fh: torch.save(state, fh))

    def try_resume(self) -> bool:
        path = self.record.checkpoint_dir / "state.pt"
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.core.load_state_dict(state)
        self.pool.verifier.failures = state["verifier"]["failures"]
        self.step = int(state["step"])
        self.record.truncate_after(self.step)
        return True

    # ------------------------------------------------------------------ the loop

    def run(self) -> dict[str, Any]:
        self.record.start(dump(self.cfg))
        if self.record.finished:
            return json.loads(self.record.summary_path.read_text())
        self.run_until(self.cfg.train.steps)
        summary = self._summary()
        self.record.write_summary(summary)
        return summary

    def run_until(self, until: int) -> None:
        """Run (or resume) up to step ``until`` of the run's ``train.steps``, evaluating where
        the full run would; no summary (``selbench recheck`` replays a run's first steps)."""
        cfg = self.cfg
        self.record.start(dump(cfg))
        fingerprint.record(self.record.root, self.data, self.code_commit)
        resumed = self.try_resume()
        if self.progress:  # where the records go (the default follows the working directory)
            print(f"run folder: {self.record.root} ({'resumed at step ' + str(self.step) if resumed else 'new'})",
                  file=sys.stderr)
        if not resumed or not self.record.read_eval():
            # a fresh start drops everything, the step-0 row of a run killed before its first
            # checkpoint included, so the rerun does not log step 0 twice
            self.record.truncate_after(-1)
            self._eval_and_log(0)
        watch = Watch(cfg, self.record.root, self.step if resumed else 0)
        bar = progress.bar(cfg.train.steps, initial=self.step, disable=not self.progress,
                           desc=f"{cfg.pair} {cfg.strategy_name} s{cfg.seed}", unit="step")
        acc = self.record.read_eval()[-1]["accuracy"]
        while self.step < min(until, cfg.train.steps):
            step = self.step + 1
            metrics = self.train_step(step)
            self.step = step
            if step % cfg.eval.every == 0 or step == cfg.train.steps:
                acc = self._eval_and_log(step)
                metrics["eval/accuracy"] = acc
                # off the clock, like the evaluation: the machine's speed at this point of the run
                metrics[MACHINE_KEY] = self.core.probe_machine()
            self.record.log_step(step, metrics)
            watch.step(step, metrics)
            if cfg.train.checkpoint_every and (step % cfg.train.checkpoint_every == 0
                                               or step == cfg.train.steps):
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['train/reward_mean']:.2f}", acc=f"{acc:.3f}",
                            eff=f"{metrics['train/effective_frac']:.2f}")
        bar.close()
        watch.close()

    def _summary(self) -> dict[str, Any]:
        probes = [v for _, name, v in self.record.read_metrics() if name == MACHINE_KEY]
        # data: what the run read (also in data.json, checked on resume)
        return self.core.summary(self.step, self.record.read_eval(), probes, "inprocess",
                                 self.code_commit, data=self.data, compiled=self.compiled)


def run(cfg: RunConfig, results_root: Path, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Run (or resume, or find finished) the run for ``cfg``; returns (folder, summary)."""
    run_dir = results_root / "runs" / cfg.run_id()
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return run_dir, json.loads(summary_path.read_text())
    # one writer per run folder: a second process on the same run would interleave records
    with folder_lock(run_dir, RunBusyError.for_run(run_dir)):
        if summary_path.exists():  # finished while we waited for the lock
            return run_dir, json.loads(summary_path.read_text())
        trainer = Trainer(cfg, run_dir, progress=progress)
        return run_dir, trainer.run()
