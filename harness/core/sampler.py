"""Sampling and scoring a policy on a pool: what the trainer, evaluation, the probe and the
predictor fit share.

A :class:`Sampler` holds the policy (model, tokenizer), the tokenized pool and held-out set, the
generation engine (``train.engine``: Hugging Face or vLLM, built on first use so that a resumed
run's engine starts from the checkpoint's weights) and the verifier, and draws every sample from
a seeded stream per (seed, step, purpose) (:func:`harness.core.step.seed_for`), so a resumed run
samples exactly what an uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.config import RunConfig
from harness.config.base import ConfigError
from harness.core import engines
from harness.core.rollout import Rollouts, left_pad, sequence_logprobs
from harness.core.step import EVAL_SALT, seed_for
from harness.instrument import policy, positions
from harness.instrument.tasks import Pool, load_pool


def device_for(name: str) -> torch.device:
    """``train.device`` as a torch device, refused at once when this torch cannot reach it."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", name, "no CUDA device is visible to this torch "
                          f"({torch.__version__}); use 'cpu'")
    return device


class Sampler:
    """A policy on a pool: tokenized prompts, an engine, the verifier (see the module docstring).
    ``on_verifier_failures`` (if set) is told how many checks failed in each scoring call."""

    def __init__(self, cfg: RunConfig, pool: Pool, model: Any, tokenizer: Any,
                 model_path: Path) -> None:
        self.cfg, self.pool, self.model, self.tokenizer = cfg, pool, model, tokenizer
        self.model_path = model_path
        self.on_verifier_failures: Callable[[int], None] | None = None
        self.train_tokens = self._tokenize([q.text for q in pool.train])
        eval_qs = pool.eval[: cfg.eval.max_questions] if cfg.eval.max_questions else pool.eval
        self.eval_questions = eval_qs
        self.eval_tokens = self._tokenize([q.text for q in eval_qs])
        self.eval_tiers = np.array([str(q.meta.get("tier", "")) for q in eval_qs])
        self.pad_id = tokenizer.pad_token_id
        self.eos_ids = self._eos_ids()
        self.eval_references = (reference_tokens(cfg, tokenizer, eval_qs)
                                if cfg.eval.metric == "exact" else None)
        self._engine: engines.Engine | None = None

    @classmethod
    def load(cls, cfg: RunConfig, progress: bool = True) -> Sampler:
        """The pair's pool (prompts too long for the model dropped or refused) and its base
        policy on ``train.device``: sampling without a trainer (the probe)."""
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)  # as a trainer does: a model built here is the trainer's
        pool = positions.fit_for_model(load_pool(cfg.task, cfg.pair), cfg, progress=progress)
        model, tokenizer, model_path = policy.load(cfg.model, progress=progress)
        model.to(device_for(cfg.train.device))
        return cls(cfg, pool, model, tokenizer, model_path)

    @property
    def engine(self) -> engines.Engine:
        if self._engine is None:
            # room for the longest prompt plus a full response (vLLM sizes its context up front)
            longest = max(map(len, [*self.train_tokens, *self.eval_tokens]), default=0)
            self._engine = engines.make_engine(
                self.cfg.train.engine, self.model, self.model_path, seed=self.cfg.seed,
                min_model_len=longest + self.cfg.train.max_new_tokens)
        return self._engine

    def sync(self) -> None:
        """Push the model's updated weights into the engine (nothing to do before it exists)."""
        if self._engine is not None:
            self._engine.sync_weights(self.model)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        prompts = [policy.render_prompt(self.cfg.model, self.tokenizer, t) for t in texts]
        # chat templates already carry their special tokens; never add a BOS twice
        return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(gen_eos)
        return sorted(i for i in ids if i is not None)

    def decode(self, ro: Rollouts) -> list[str]:
        ids = ro.response_ids * ro.response_mask.long() + self.pad_id * (1 - ro.response_mask.long())
        return self.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)

    def score(self, questions: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        verifier = self.pool.verifier
        before = verifier.failures
        rewards = np.array([verifier(q, t) for q, t in zip(questions, texts, strict=True)],
                           dtype=np.float64)
        if self.on_verifier_failures is not None:
            self.on_verifier_failures(verifier.failures - before)
        return rewards

    def sample(self, tokens: list[list[int]], temperature: float,
                generator: torch.Generator) -> tuple[Rollouts, list[str]]:
        self.model.eval()
        ro = self.engine.sample(
            tokens, max_new_tokens=self.cfg.train.max_new_tokens, temperature=temperature,
            eos_ids=self.eos_ids, pad_id=self.pad_id, generator=generator)
        return ro, self.decode(ro)

    def generate(self, indices: list[int], n_samples: int, step: int,
                  salt: int) -> tuple[Rollouts, list[str]]:
        """``n_samples`` responses per training-pool index, from a (seed, step, salt) stream."""
        tokens = [self.train_tokens[i] for i in indices for _ in range(n_samples)]
        gen = torch.Generator().manual_seed(seed_for(self.cfg.seed, step, salt))
        return self.sample(tokens, self.cfg.train.temperature, gen)

    def rewards(self, indices: list[int], n_samples: int, texts: list[str]) -> np.ndarray:
        questions = [self.pool.train[i] for i in indices for _ in range(n_samples)]
        return self.score(questions, texts).reshape(len(indices), n_samples)

    def rollout_and_score(
        self, indices: list[int], n_samples: int, step: int, salt: int
    ) -> tuple[Rollouts, np.ndarray]:
        """G samples for each training-pool index; rewards shaped [len(indices), G]."""
        ro, texts = self.generate(indices, n_samples, step, salt)
        return ro, self.rewards(indices, n_samples, texts)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self) -> tuple[float, dict[str, float]]:
        """Mean reward on the held-out set (greedy, or sampled pass rate), overall and per
        difficulty tier (empty when the pool has no tiers). Off the clock."""
        e = self.cfg.eval
        if self.eval_references is not None:
            self.model.eval()
            probs = exact_pass_rates(self.model, self.eval_tokens, self.eval_references,
                                     e.temperature, self.pad_id, e.batch_size)
            by_tier = {name: float(probs[self.eval_tiers == name].mean())
                       for name in dict.fromkeys(self.eval_tiers.tolist()) if name}
            return float(probs.mean()), by_tier
        tokens = [tok for tok in self.eval_tokens for _ in range(e.samples)]
        questions = [q for q in self.eval_questions for _ in range(e.samples)]
        gen = torch.Generator().manual_seed(seed_for(self.cfg.seed, 0, EVAL_SALT))  # same draws each eval
        rewards = []
        for i in range(0, len(tokens), e.batch_size):
            _, texts = self.sample(tokens[i:i + e.batch_size], e.temperature, gen)
            rewards.append(self.score(questions[i:i + e.batch_size], texts))
        flat = np.concatenate(rewards)
        tiers = np.repeat(self.eval_tiers, e.samples)  # questions repeat each one samples times
        by_tier = {name: float(flat[tiers == name].mean())
                   for name in dict.fromkeys(self.eval_tiers.tolist()) if name}
        return float(flat.mean()), by_tier


def reference_tokens(cfg: RunConfig, tokenizer: Any, questions: Sequence[Any]) -> list[list[int]]:
    """Token ids of each question's reference response plus EOS, tokenized apart from the prompt
    as in the warm start (the policy continues a tokenized prompt)."""
    eos = tokenizer.eos_token_id
    return [tokenizer(policy.reference_response(cfg.model, q), add_special_tokens=False)["input_ids"]
            + [eos] for q in questions]


@torch.no_grad()
def exact_pass_rates(model: Any, prompts: Sequence[Sequence[int]],
                     responses: Sequence[Sequence[int]], temperature: float, pad_id: int,
                     batch_size: int) -> np.ndarray:
    """Probability that the policy, sampling at ``temperature``, emits exactly ``responses[i]``
    (EOS included) after ``prompts[i]``: one teacher-forced pass, no sampling noise."""
    out = []
    for lo in range(0, len(prompts), batch_size):
        p_ids, p_mask = left_pad(prompts[lo:lo + batch_size], pad_id)
        chunk = responses[lo:lo + batch_size]
        width = max(len(r) for r in chunk)
        r_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        r_mask = torch.zeros((len(chunk), width))
        for row, r in enumerate(chunk):
            r_ids[row, :len(r)] = torch.tensor(r, dtype=torch.long)
            r_mask[row, :len(r)] = 1.0
        ro = Rollouts(p_ids, p_mask, r_ids, r_mask, torch.zeros_like(r_mask)).to(model.device)
        logp = sequence_logprobs(model, ro, temperature)
        out.append(torch.exp((logp * ro.response_mask).sum(-1)).double().cpu().numpy())
    return np.concatenate(out)
