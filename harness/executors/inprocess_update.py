"""The in-process executor's policy update: AdamW, the learning-rate schedule, log-probs under a
policy in micro-batches, and the PPO-clip update over mini-batches and micro-batches.

Plain functions of the model, the optimizer and ``cfg.train``; :class:`harness.executors.trainer.Trainer`
calls them. The GRPO math (advantages, the clipped loss, the k3 KL) lives in
:mod:`harness.core.grpo`, the forward over a batch of rollouts in :mod:`harness.core.rollout`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from harness.config import TrainConfig
from harness.core import grpo
from harness.core.rollout import Rollouts, length_buckets, sequence_logprobs


def make_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(), lr=t.lr, betas=tuple(t.adam_betas), weight_decay=t.weight_decay
    )


def reference_model(model: torch.nn.Module, t: TrainConfig) -> torch.nn.Module | None:
    """A frozen copy of the initial policy for the KL penalty; ``None`` when ``kl_coef`` is 0."""
    if t.kl_coef <= 0:
        return None
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def micro_slices(rows: int, micro_batch_size: int) -> list[slice]:
    return [slice(i, min(i + micro_batch_size, rows)) for i in range(0, rows, micro_batch_size)]


@torch.no_grad()
def logprobs_under(model: Any, ro: Rollouts, t: TrainConfig,
                   work: dict[str, int] | None = None) -> torch.Tensor:
    """Per-token log-probs of every response of ``ro`` under ``model``, micro-batch by micro-batch."""
    rows = ro.response_ids.shape[0]
    return torch.cat([sequence_logprobs(model, ro, t.temperature, s, work)
                      for s in micro_slices(rows, t.micro_batch_size)])


def lr_at(t: TrainConfig, step: int, mini: int) -> float:
    """Linear warm-up over ``warmup_steps`` GRPO steps, then constant or a half cosine down to
    ``lr_min_ratio * lr`` at the last step; computed from the step so that a resumed run
    needs no scheduler state."""
    n_mini = t.batch_size // t.mini_batch_size
    done = (step - 1) * n_mini + mini + 1
    if t.warmup_steps > 0 and done < t.warmup_steps * n_mini:
        return t.lr * done / (t.warmup_steps * n_mini)
    if t.lr_schedule == "constant":
        return t.lr
    decay = max(1, (t.steps - t.warmup_steps) * n_mini)
    frac = min(1.0, max(0, done - t.warmup_steps * n_mini) / decay)
    return t.lr * (t.lr_min_ratio + (1 - t.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def ppo_update(model: Any, optimizer: torch.optim.Optimizer, t: TrainConfig, ro: Rollouts,
               adv: torch.Tensor, old_logp: torch.Tensor | None, ref_logp: torch.Tensor | None,
               step: int = 1, replay_rows: torch.Tensor | None = None,
               work: dict[str, int] | None = None) -> dict[str, float]:
    """PPO-clip over mini-batches; ``old_logp=None`` takes each forward's own, detached
    (only valid for a single mini-batch, where no optimizer step precedes any forward).

    ``replay_rows`` marks rows replayed from the buffer: their ratio is taken against the
    stored behaviour log-probs with the clip centred on pi_old / mu_old. Fresh rows use
    pi_old as their behaviour policy (r_old = 1), so a micro-batch without replayed rows
    computes exactly plain PPO-clip. With replayed rows the statistics add the token-level
    pi_old / mu_old over them (``replay_weight_mean``, ``_min``, ``_max``)."""
    g = t.group_size
    model.train()
    n_mini = t.batch_size // t.mini_batch_size
    if old_logp is None and n_mini > 1:
        raise ValueError("old_logp=None needs one mini-batch (mini_batch_size == batch_size)")
    losses, kls, clip_fracs, grad_norms = [], [], [], []
    weights: list[torch.Tensor] = []  # pi_old / mu_old of every replayed token
    for m in range(n_mini):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(t, step, m)
        lo, hi = m * t.mini_batch_size * g, (m + 1) * t.mini_batch_size * g
        mini_tokens = ro.response_mask[lo:hi].sum().clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        mini_loss = 0.0
        for rows in length_buckets(ro, lo, hi, g, t.micro_batch_size):
            mask = ro.response_mask[rows]
            logp = sequence_logprobs(model, ro, t.temperature, rows, work)
            old = logp.detach() if old_logp is None else old_logp[rows]
            behaviour = None
            if replay_rows is not None and bool(replay_rows[rows].any()):
                behaviour = torch.where(replay_rows[rows].unsqueeze(-1),
                                        ro.behaviour_logp[rows], old)
                with torch.no_grad():
                    # how far off-policy the replayed tokens are: the importance weight the
                    # clip is centred on (unbounded by the clip itself)
                    sel = replay_rows[rows].unsqueeze(-1) & mask.bool()
                    weights.append(torch.exp((old - behaviour).clamp(-20.0, 20.0))[sel])
            loss, st = grpo.policy_loss(logp, old, adv[rows], mask, t.clip_eps,
                                        behaviour_logp=behaviour)
            if ref_logp is not None:
                kl = grpo.masked_mean(grpo.k3_kl(logp, ref_logp[rows]), mask)
                loss = loss + t.kl_coef * kl
                kls.append(float(kl))
            # weight micro-batches by their tokens so the mini-batch loss is a token-mean
            weight = mask.sum() / mini_tokens
            (loss * weight).backward()
            mini_loss += float(loss.detach()) * float(weight)
            clip_fracs.append(st["clip_frac"])
        if t.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        else:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        grad_norms.append(float(norm))
        optimizer.step()
        losses.append(mini_loss)
    out = {"loss": float(np.mean(losses)), "clip_frac": float(np.mean(clip_fracs)),
           "lr": lr_at(t, step, n_mini - 1),
           "grad_norm": float(np.mean(grad_norms))}
    if kls:
        out["kl"] = float(np.mean(kls))
    if weights:
        w = torch.cat(weights).double()
        out.update(replay_weight_mean=float(w.mean()), replay_weight_max=float(w.max()),
                   replay_weight_min=float(w.min()))
    return out
