"""OpenRLHF ``Experience`` objects <-> selbench groups: feedback, replay buffer, replayed samples.

OpenRLHF's sample generator returns one single-sample ``Experience`` per response: ``sequences``
is prompt + response ``[1, T]``; ``action_mask`` ``[1, T-1]`` marks response tokens shifted by one
(position ``j`` scores token ``j + 1``); ``rollout_log_probs`` and, after the actor's forward,
``action_log_probs`` follow ``action_mask``. The G samples of a prompt arrive consecutively and
carry its label (``{"i": pool index}``).

- :func:`rewards_by_index` reads the per-prompt rewards the strategy is told about.
- :func:`groups_from_experiences` cuts a batch (after the actor's forward, whose
  ``action_log_probs`` are pi_old of the generating step) into :class:`harness.core.replay.Group`
  objects for the replay buffer: the behaviour log-probs of the paper's corrected loss.
- :func:`replay_samples` turns a stored group back into single-sample Experiences whose
  ``rollout_log_probs`` are those behaviour log-probs, so OpenRLHF's importance correction
  weights them by pi_old / mu (see :mod:`harness.executors.openrlhf.flags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.core.replay import Group
from harness.executors.openrlhf.reward import parse_label, train_label


def sample_reward(sample: Any) -> float:
    return float(torch.as_tensor(sample.rewards).flatten()[0])


def rewards_by_index(samples: Sequence[Any], group_size: int) -> dict[int, tuple[float, ...]]:
    """{pool index: its G rewards} from single-sample Experiences, in arrival order.

    Raises if a prompt did not come back with exactly G samples: the GRPO groups would be wrong.
    """
    out: dict[int, list[float]] = {}
    for sample in samples:
        kind, index = parse_label(sample.labels[0])
        if kind != "train":
            raise ValueError(f"an evaluation sample ({sample.labels[0]}) is in a training batch")
        out.setdefault(index, []).append(sample_reward(sample))
    wrong = {i: len(r) for i, r in out.items() if len(r) != group_size}
    if wrong:
        raise ValueError(f"prompts with a sample count other than G={group_size}: {wrong}")
    return {i: tuple(r) for i, r in out.items()}


def _split_row(sequence: torch.Tensor, action_mask: torch.Tensor,
               logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(prompt ids, response ids, response log-probs) of one padded row."""
    positions = torch.nonzero(action_mask.flatten().bool()).flatten()
    if len(positions) == 0:
        start = int(action_mask.numel()) + 1
        return sequence.flatten()[:start].clone(), sequence.new_zeros(0), logp.new_zeros(0)
    first, last = int(positions[0]), int(positions[-1])
    seq = sequence.flatten()
    return (seq[: first + 1].clone(), seq[first + 1: last + 2].clone(),
            logp.flatten()[first: last + 1].float().clone())


def groups_from_experiences(experiences: Sequence[Any], samples: Sequence[Any], step: int,
                            group_size: int) -> list[Group]:
    """Groups (prompt, G responses, pi_old log-probs, rewards) of a made experience batch.

    ``experiences`` are OpenRLHF's micro-batches after ``make_experience_batch`` (each with the
    ``index`` of its rows in ``samples``, the single-sample rollouts in order); rows are
    right-padded, so each row's tokens keep their positions.
    """
    rows: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for exp in experiences:
        for k, sample_pos in enumerate(exp.index):
            rows[int(sample_pos)] = _split_row(exp.sequences[k], exp.action_mask[k],
                                               exp.action_log_probs[k])
    by_prompt: dict[int, list[int]] = {}
    for pos, sample in enumerate(samples):
        _, index = parse_label(sample.labels[0])
        by_prompt.setdefault(index, []).append(pos)
    groups = []
    for index, positions in by_prompt.items():
        if len(positions) != group_size:
            raise ValueError(f"prompt {index} has {len(positions)} samples, expected {group_size}")
        parts = [rows[p] for p in positions]
        groups.append(Group(index=index, step=step, prompt=parts[0][0],
                            responses=[p[1] for p in parts], behaviour_logp=[p[2] for p in parts],
                            rewards=tuple(sample_reward(samples[p]) for p in positions)))
    return groups


def replay_samples(group: Group, prompt_text: str) -> list[Any]:
    """Single-sample Experiences of a stored group, behaviour log-probs as rollout log-probs."""
    from openrlhf.trainer.ppo_utils.experience import Experience

    out = []
    p = len(group.prompt)
    for response, logp, reward in zip(group.responses, group.behaviour_logp, group.rewards,
                                      strict=True):
        sequence = torch.cat([group.prompt, response]).long()
        total = len(sequence)
        action_mask = torch.zeros(total - 1, dtype=torch.long)
        action_mask[p - 1: p - 1 + len(response)] = 1
        rollout_logp = torch.zeros(total - 1, dtype=torch.float32)
        rollout_logp[p - 1: p - 1 + len(response)] = logp.float()
        r = torch.tensor([float(reward)])
        out.append(Experience(
            sequences=sequence.unsqueeze(0),
            attention_mask=torch.ones(1, total, dtype=torch.long),
            action_mask=action_mask.unsqueeze(0),
            rollout_log_probs=rollout_logp.unsqueeze(0),
            prompts=[prompt_text], labels=[train_label(group.index)], images=[None],
            mm_train_inputs=[None], rewards=r, scores=r.clone(),
            response_length=torch.tensor([len(response)]), truncated=torch.tensor([False]),
            total_length=torch.tensor([float(total)]),
            # the same info keys as a fresh sample: micro-batches concatenate them key by key
            info={"reward": r.clone(), "score": r.clone(),
                  "response_clip_ratio": torch.tensor([False])},
        ))
    return out


def mark_on_policy(experiences: Sequence[Any], n_fresh_samples: int) -> None:
    """Fresh rows behave as on-policy: their rollout log-probs become pi_old (weight exactly 1).

    Rows ``< n_fresh_samples`` of the step (by sample position) were generated by the pre-update
    policy; the rest are replayed and keep their stored behaviour log-probs.
    """
    for exp in experiences:
        if exp.rollout_log_probs is None:
            exp.rollout_log_probs = exp.action_log_probs.clone()
            continue
        for k, sample_pos in enumerate(exp.index):
            if int(sample_pos) < n_fresh_samples:
                exp.rollout_log_probs[k] = exp.action_log_probs[k].to(exp.rollout_log_probs.dtype)
