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

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from openrlhf.trainer.ppo_trainer import BasePPOTrainer
from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
from openrlhf.trainer.ray.vllm_engine import batch_vllm_engine_call
from openrlhf.utils.utils import get_tokenizer

from harness import evalsets, policy
from harness.config import load_resolved
from harness.context import ContextBase, KeptGroups
from harness.executors.openrlhf import experiences as xp
from harness.executors.openrlhf.flags import optimizer_steps
from harness.executors.openrlhf.prompts import PromptSource, eval_source
from harness.records import RunRecord, atomic_save
from harness.replay import Group
from harness.step import MACHINE_KEY, Batch, StepCore
from harness.watch import Watch
from strategies.base import GroupFeedback, StepFeedback
from strategies.registry import build_strategy, get_entry

SPEC_ENV = "SELBENCH_OPENRLHF_SPEC"
KEEP_STATES = 3


def _tokens(samples: Sequence[Any]) -> int:
    return int(sum(float(torch.as_tensor(s.response_length).sum()) for s in samples))


class _Context(ContextBase):
    """The strategy's view of a step: extra rollouts through the vLLM engines, predictions."""

    def __init__(self, trainer: SelbenchPPOTrainer, step: int) -> None:
        super().__init__(trainer.cfg, len(trainer.pool.train), trainer.scorer, step)
        self._t = trainer
        # reuse=True groups: pool index -> G samples (smaller rollouts of a prompt add up to G)
        self._kept: KeptGroups[list[Any]] = KeptGroups(self.group_size, lambda a, b: a + b, len)

    @property
    def kept(self) -> dict[int, list[Any]]:
        return self._kept.complete

    def rollout(self, indices: Sequence[int], n_samples: int, reuse: bool = False) -> list[list[float]]:
        start = time.perf_counter()
        indices = [int(i) for i in indices]
        samples, served = self._t.generate(indices, n_samples, self._t.cfg.train.temperature, 1.0)
        if served != indices:
            raise RuntimeError(f"extra rollout served {served[:8]}... instead of {indices[:8]}...")
        by_index: dict[int, list[Any]] = {}
        for sample in samples:
            by_index.setdefault(xp.parse_label(sample.labels[0])[1], []).append(sample)
        rewards = [[xp.sample_reward(s) for s in by_index[i]] for i in indices]
        if reuse:
            for i in indices:
                self._kept.add(i, by_index[i])
        self.extra.add(len(indices), len(samples), _tokens(samples), time.perf_counter() - start)
        return rewards


@ray.remote
class SelbenchPPOTrainer(BasePPOTrainer):
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
        from harness.tasks import load_pool

        cfg = self.cfg
        self.pool = load_pool(cfg.task, cfg.pair)
        self.eval_questions = (self.pool.eval[: cfg.eval.max_questions] if cfg.eval.max_questions
                               else self.pool.eval)
        self.hf_tokenizer = tokenizer
        strategy_obj = build_strategy(
            cfg.strategy_name, {k: v for k, v in cfg.strategy.items() if k != "name"},
            pool_size=len(self.pool.train), seed=cfg.seed)
        # the strategy, replay buffer, counters and the step's bookkeeping (harness.step)
        self.core = StepCore(cfg, strategy_obj, [str(q.meta.get("tier", ""))
                                                 for q in self.pool.train])
        self.scorer = None
        if get_entry(cfg.strategy_name).uses_predictor:
            from harness.predictor.resources import load_scorer

            self.scorer = load_scorer(cfg, [q.text for q in self.pool.train], Path(pretrain))
        self.record = RunRecord(self.run_dir)

    def get_max_steps(self) -> int:
        return optimizer_steps(self.cfg)

    # ------------------------------------------------------------------ generation

    def render(self, index: int) -> str:
        return policy.render_prompt(self.cfg.model, self.hf_tokenizer, self.pool.train[index].text)

    def render_eval(self, position: int) -> str:
        return policy.render_prompt(self.cfg.model, self.hf_tokenizer,
                                    self.eval_questions[position].text)

    @contextlib.contextmanager
    def _engines_awake(self) -> Iterator[None]:
        sleep = self.args.vllm.enable_sleep
        if sleep:
            batch_vllm_engine_call(self.vllm_engines, "wake_up")
        try:
            yield
        finally:
            if sleep:
                batch_vllm_engine_call(self.vllm_engines, "sleep")

    def generate(self, indices: list[int], n_samples: int, temperature: float, top_p: float,
                 source: PromptSource | None = None, dynamic_filtering: bool = False,
                 ) -> tuple[list[Any], list[int]]:
        """Roll out ``indices`` (or ``source``) through OpenRLHF's sample generator."""
        source = source or PromptSource(indices, self.render)
        kwargs = dict(self.generate_kwargs, temperature=temperature, top_p=top_p,
                      n_samples_per_prompt=n_samples)
        with self._engines_awake():
            samples, _, _ = self.samples_generator._generate_vllm(
                dataloader_iter=source, num_prompts=len(indices),
                dynamic_filtering=dynamic_filtering, **kwargs)
        return samples, source.served

    # ------------------------------------------------------------------ one step

    def selbench_step(self, step: int) -> dict[str, float]:
        t, o, core = self.cfg.train, self.cfg.executor.openrlhf, self.core
        timer = core.begin()
        ctx = _Context(self, step)
        indices = core.select(ctx)

        kept = {i: ctx.kept[i] for i in indices if i in ctx.kept}
        new = [i for i in indices if i not in kept]
        samples: list[Any] = []
        served: list[int] = []
        if new:
            # dynamic-filtering refills ask the strategy again for prompts not used this step
            source = PromptSource(new, self.render, refill=core.refill(ctx, set(indices))
                                  if o.dynamic_filtering else None)
            samples, served = self.generate(new, t.group_size, t.temperature, 1.0, source=source,
                                            dynamic_filtering=o.dynamic_filtering)
            if served[: len(new)] != new:
                raise RuntimeError("OpenRLHF rolled out prompts the strategy did not choose")
        fresh_rewards = xp.rewards_by_index(samples, t.group_size)
        timer.lap("generate")

        fresh_samples = samples + [s for i in indices if i in kept for s in kept[i]]
        trained = set(fresh_rewards) | set(kept)
        replayed = core.replay_draw(step, t.batch_size - len(trained), exclude=trained)
        rollout = fresh_samples + [s for g in replayed for s in xp.replay_samples(g, self.render(g.index))]
        timer.lap("reward")  # rewards came with the samples

        status, groups, make_s = self._train_on(rollout, len(fresh_samples), step)
        timer.lap("update")
        timer.move(make_s, "update", "logprobs")  # OpenRLHF's experience maker: the log-probs

        sel_order = [i for i in served if i in fresh_rewards] + [i for i in indices if i in kept]
        sel_rewards = {**fresh_rewards, **{i: tuple(xp.sample_reward(s) for s in kept[i]) for i in kept}}
        to_replay: list[Group] = []
        if core.replay is not None:
            by_index = {g.index: g for g in groups}
            to_replay = self._kept_groups(ctx, set(kept), step) + [by_index[i] for i in sel_order]
        batch = Batch(
            feedback=StepFeedback(step=step, groups=tuple(
                GroupFeedback(index=i, rewards=sel_rewards[i]) for i in sel_order)),
            trained=np.array([xp.sample_reward(s) for s in rollout]).reshape(-1, t.group_size),
            replayed=replayed, new_prompts=len(samples) // t.group_size, samples=len(samples),
            tokens_generated=_tokens(samples), tokens_trained=_tokens(rollout),
            responses_trained=len(rollout), reused_groups=len(kept), to_replay=to_replay)
        return core.finish(step, batch, ctx.extra, {
            f"openrlhf/{key}": float(value) for key, value in status.items()
            if isinstance(value, int | float) and math.isfinite(float(value))})

    def _kept_groups(self, ctx: _Context, used: set[int], step: int) -> list[Group]:
        """Reference groups made with reuse=True but not trained on: candidates for replay.

        They have no pi_old forward of this step, so their vLLM log-probs stand in as the
        behaviour log-probs (rollout log-probs are requested whenever replay is on)."""
        out = []
        for index, samples in ctx.kept.items():
            if index in used or any(s.rollout_log_probs is None for s in samples):
                continue
            parts = [xp._split_row(s.sequences[0], s.action_mask[0], s.rollout_log_probs[0])
                     for s in samples]
            out.append(Group(index=index, step=step, prompt=parts[0][0],
                             responses=[p[1] for p in parts], behaviour_logp=[p[2] for p in parts],
                             rewards=tuple(xp.sample_reward(s) for s in samples)))
        return out

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

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> tuple[float, dict[str, float]]:
        e = self.cfg.eval
        source = eval_source(len(self.eval_questions), self.render_eval)
        samples, _ = self.generate(list(range(len(self.eval_questions))), e.samples,
                                   e.temperature, e.top_p, source=source)
        questions = [self.eval_questions[xp.parse_label(s.labels[0])[1]] for s in samples]
        return evalsets.accuracy(questions, [xp.sample_reward(s) for s in samples])

    def _eval_and_log(self, step: int) -> dict[str, float]:
        start = time.perf_counter()
        acc, per_set = self.evaluate()
        self.core.log_eval(self.record, step, acc, time.perf_counter() - start)
        return {"eval/accuracy": acc, **evalsets.metric_names(per_set)}

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
        data_file = self.run_dir / "data.json"  # written by the launcher (harness.fingerprint)
        data = json.loads(data_file.read_text()) if data_file.exists() else None
        if data is not None:  # as the in-process summary holds it: the commit is its own key
            data.pop("git_commit", None)
        return self.core.summary(step, self.record.read_eval(), probes, "openrlhf", data=data)


def _dump(cfg: Any) -> str:
    from harness.config import dump

    return dump(cfg)
