"""The selbench controller inside OpenRLHF: its single-controller trainer, with our data loop.

The launcher (:mod:`harness.executors.openrlhf.launch`) installs :class:`SelbenchPPOTrainer` in
place of ``openrlhf.trainer.ppo_trainer.PPOTrainer`` and runs OpenRLHF's own ``train_ppo_ray``
entry point, so OpenRLHF builds everything as usual (vLLM engines, DeepSpeed actor group, weight
sync, checkpoints) and hands this Ray actor the groups. Per GRPO step it:

1. asks the selbench strategy for the step's prompts (``select`` with a context whose
   ``rollout`` runs extra prompts through the same vLLM engines, e.g. DOTS references, and whose
   ``predict`` is the frozen difficulty predictor);
2. rolls them out with OpenRLHF's ``SamplesGenerator`` fed by a :class:`PromptSource`: every
   prompt, dynamic-filtering refills included, is the strategy's choice; rewards come from the
   selbench verifier packaged as the reward-function file;
3. adds groups replayed from the selbench buffer (their behaviour log-probs as rollout
   log-probs) and trains with OpenRLHF's experience maker (group_norm advantages) and PPO actors;
4. tells the strategy the per-prompt rewards, stores informative groups for replay, and writes
   the same run records as the in-process executor (metrics.csv, eval.csv, summary.json).

It needs CUDA GPUs, DeepSpeed, vLLM and Ray (the GPU side); everything it delegates to
(prompt source, experience conversion, reward function, flags) is tested on CPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import ray
import torch
from openrlhf.trainer.ppo_trainer import BasePPOTrainer
from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
from openrlhf.utils.utils import get_tokenizer

from harness.config import load_resolved
from harness.core.replay import Group
from harness.core.step import MACHINE_KEY, StepCore
from harness.executors.openrlhf import experiences as xp
from harness.executors.openrlhf.flags import optimizer_steps
from harness.executors.openrlhf.steploop import SelbenchLoop
from harness.runs.records import RunRecord, atomic_save
from harness.runs.watch import Watch
from strategies.registry import build_strategy, get_entry

SPEC_ENV = "SELBENCH_OPENRLHF_SPEC"
KEEP_STATES = 3


@ray.remote
class SelbenchPPOTrainer(SelbenchLoop, BasePPOTrainer):
    """OpenRLHF's single controller with selbench's data loop (see the module docstring)."""

    def __init__(self, pretrain: str, strategy: Any, actor_model_group: Any,
                 critic_model_group: Any, reward_model_group: Any, reference_model_group: Any,
                 vllm_engines: Any, **generate_kwargs: Any) -> None:
        spec = json.loads(Path(os.environ[SPEC_ENV]).read_text())
        self.run_dir = Path(spec["run_dir"])
        self.cfg = load_resolved(Path(spec["config"]))
        if strategy.args.ckpt.save_steps == -1:
            strategy.args.ckpt.save_steps = float("inf")
        tokenizer = get_tokenizer(pretrain, None, "left", strategy,
                                  use_fast=not strategy.args.data.disable_fast_tokenizer)
        self.samples_generator = SamplesGenerator(strategy=strategy, prompts_dataloader=None,
                                                  eval_dataloader=None, tokenizer=tokenizer,
                                                  vllm_engines=vllm_engines)
        super().__init__(strategy, actor_model_group, critic_model_group, reward_model_group,
                         reference_model_group, vllm_engines, tokenizer)
        self.generate_kwargs = generate_kwargs
        from harness.instrument.tasks import load_pool

        cfg = self.cfg
        self.pool = load_pool(cfg.task, cfg.pair)
        self.eval_questions = (self.pool.eval[: cfg.eval.max_questions] if cfg.eval.max_questions
                               else self.pool.eval)
        self.hf_tokenizer = tokenizer
        strategy_obj = build_strategy(
            cfg.strategy_name, {k: v for k, v in cfg.strategy.items() if k != "name"},
            pool_size=len(self.pool.train), seed=cfg.seed)
        # the strategy, replay buffer, counters and the step's bookkeeping (harness.core.step)
        self.core = StepCore(cfg, strategy_obj, [str(q.meta.get("tier", ""))
                                                 for q in self.pool.train])
        self.scorer = None
        if get_entry(cfg.strategy_name).uses_predictor:
            from harness.predictor.resources import load_scorer

            self.scorer = load_scorer(cfg, [q.text for q in self.pool.train], Path(pretrain))
        self.record = RunRecord(self.run_dir)

    def get_max_steps(self) -> int:
        return optimizer_steps(self.cfg)

    def _train_on(self, rollout: list[Any], n_fresh_samples: int,
                  step: int) -> tuple[dict[str, Any], list[Group], float]:
        """OpenRLHF's experience making and PPO update on our batch; returns the groups with
        their pi_old log-probs (the behaviour log-probs of later replays)."""
        t0 = time.perf_counter()
        experiences = self.experience_maker.make_experience_batch(rollout)
        make_s = time.perf_counter() - t0
        groups: list[Group] = []
        if self.core.replay is not None:
            xp.mark_on_policy(experiences, n_fresh_samples)
            groups = xp.groups_from_experiences(experiences, rollout[:n_fresh_samples], step,
                                                self.cfg.train.group_size)
        if self.args.train.dynamic_batch_enable:
            from openrlhf.trainer.ppo_utils.experience import balance_experiences

            experiences = balance_experiences(experiences, self.args)
        ray.get(self.actor_model_group.async_run_method_batch(method_name="append",
                                                               experience=experiences))
        status = self.ppo_train(step)
        if self.vllm_engines is not None:
            self.broadcast_to_vllm()
        return status, groups, make_s

    # ------------------------------------------------------------------ checkpoints

    def _state_path(self, step: int) -> Path:
        return self.record.checkpoint_dir / f"selbench-{step}.pt"

    def _save_state(self, step: int) -> None:
        ckpt = self.record.checkpoint_dir
        ckpt.mkdir(parents=True, exist_ok=True)
        state = {"step": step, **self.core.state_dict()}
        atomic_save(self._state_path(step), lambda fh: torch.save(state, fh))  # old one kept whole
        for old in sorted(ckpt.glob("selbench-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[:-KEEP_STATES]:
            old.unlink()

    def _load_state(self, step: int) -> None:
        path = self._state_path(step)
        if not path.exists():
            raise RuntimeError(f"OpenRLHF resumes at step {step} but {path} is missing: the run "
                               "was stopped between the two checkpoints; remove "
                               f"{self.args.ckpt.path} to restart the run from scratch")
        self.core.load_state_dict(torch.load(path, weights_only=False))

    # ------------------------------------------------------------------ the loop

    def fit(self, global_step: int = 0) -> None:
        cfg = self.cfg
        self.record.start(_dump(cfg))
        if self.record.finished:
            return
        states = self.init_checkpoint_states()
        self.restore_best_checkpoint_state(states)
        step = int(states["global_step"])
        if step:
            self._load_state(step)
            self.broadcast_to_vllm()
        self.record.truncate_after(step)
        if not self.record.read_eval():
            self._eval_and_log(0)
        watch = Watch(cfg, self.run_dir, step)
        while step < cfg.train.steps:
            metrics = self.selbench_step(step + 1)
            step += 1
            if step % cfg.eval.every == 0 or step == cfg.train.steps:
                metrics.update(self._eval_and_log(step))
                # off the clock: the speed of this node's CPU at this point of the run
                metrics[MACHINE_KEY] = self.core.probe_machine()
            self.record.log_step(step, metrics)
            watch.step(step, metrics)
            if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                self._save_state(step)
                self.save_logs_and_checkpoints(step, {}, {
                    "episode": 0, "global_step": step, "total_consumed_prompts": self.core.counters.prompts,
                    "data_loader_state_dict": {}})
        watch.close()
        self.record.write_summary(self._summary(step))

    def _summary(self, step: int) -> dict[str, Any]:
        probes = [v for _, name, v in self.record.read_metrics() if name == MACHINE_KEY]
        data_file = self.run_dir / "data.json"  # written by the launcher (harness.runs.fingerprint)
        data = json.loads(data_file.read_text()) if data_file.exists() else None
        if data is not None:  # as the in-process summary holds it: the commit is its own key
            data.pop("git_commit", None)
        return self.core.summary(step, self.record.read_eval(), probes, "openrlhf", data=data)


def _dump(cfg: Any) -> str:
    from harness.config import dump

    return dump(cfg)
