"""Rollout replay: a FIFO buffer of recent informative groups, composed with any strategy.

A :class:`Group` is one prompt's G responses stored unpadded with the behaviour log-probs
recorded at sampling time (mu_old in DESIGN-NOTES section 1), so a replayed group can be
re-collated into any batch and trained on with the off-policy-corrected clip.
Buffer rules (as in the paper's code): capacity counted in questions, the oldest evicted first,
a question already buffered is replaced by its newer group (no duplicates), groups whose G
rewards are all equal are never stored (zero advantage), replay draws uniformly at random.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.core.rollout import Rollouts


@dataclass
class Group:
    """One prompt's G samples: prompt ids, per-sample response ids and behaviour log-probs."""

    index: int  # training-pool index
    step: int  # step whose policy generated it
    prompt: torch.Tensor  # [P] unpadded
    responses: list[torch.Tensor]  # G x [len_i], real tokens only (up to and including EOS)
    behaviour_logp: list[torch.Tensor]  # G x [len_i]
    rewards: tuple[float, ...]

    @property
    def informative(self) -> bool:
        return len(set(self.rewards)) > 1


def split_groups(ro: Rollouts, indices: Sequence[int], rewards: Sequence[Sequence[float]],
                 step: int) -> list[Group]:
    """Cut a rollout batch (``len(indices)`` prompts x G consecutive rows) into groups."""
    g = ro.response_ids.shape[0] // max(1, len(indices))
    groups = []
    for k, idx in enumerate(indices):
        rows = range(k * g, (k + 1) * g)
        # kept on the CPU whatever the policy's device: small, and checkpoints stay portable
        prompt = ro.prompt_ids[k * g][ro.prompt_mask[k * g].bool()].cpu().clone()
        lengths = [int(ro.response_mask[r].sum()) for r in rows]
        groups.append(Group(
            index=int(idx), step=step, prompt=prompt,
            responses=[ro.response_ids[r, :n].cpu().clone() for r, n in zip(rows, lengths, strict=True)],
            behaviour_logp=[ro.behaviour_logp[r, :n].cpu().clone()
                            for r, n in zip(rows, lengths, strict=True)],
            rewards=tuple(float(x) for x in rewards[k])))
    return groups


def join_groups(first: Group, more: Group) -> Group:
    """One prompt's samples from two rollouts of the same step as one group (SPEED's screening
    samples followed by its continuation samples)."""
    if first.index != more.index or not torch.equal(first.prompt, more.prompt):
        raise ValueError(f"cannot join groups of prompts {first.index} and {more.index}")
    return Group(index=first.index, step=first.step, prompt=first.prompt,
                 responses=first.responses + more.responses,
                 behaviour_logp=first.behaviour_logp + more.behaviour_logp,
                 rewards=first.rewards + more.rewards)


def collate(groups: Sequence[Group], pad_id: int) -> Rollouts:
    """Pad groups back into one batch: prompts left-padded, responses right-padded."""
    prompts = [grp.prompt for grp in groups for _ in grp.responses]
    resp = [r for grp in groups for r in grp.responses]
    logps = [lp for grp in groups for lp in grp.behaviour_logp]
    n, p_w, r_w = len(resp), max(len(p) for p in prompts), max(1, max(len(r) for r in resp))
    prompt_ids = torch.full((n, p_w), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((n, p_w), dtype=torch.long)
    response_ids = torch.full((n, r_w), pad_id, dtype=torch.long)
    response_mask = torch.zeros((n, r_w), dtype=torch.float32)
    behaviour = torch.zeros((n, r_w), dtype=torch.float32)
    for i, (p, r, lp) in enumerate(zip(prompts, resp, logps, strict=True)):
        prompt_ids[i, p_w - len(p):] = p
        prompt_mask[i, p_w - len(p):] = 1
        response_ids[i, :len(r)] = r
        response_mask[i, :len(r)] = 1.0
        behaviour[i, :len(r)] = lp
    return Rollouts(prompt_ids, prompt_mask, response_ids, response_mask, behaviour)


class ReplayBuffer:
    """FIFO of informative groups, capacity in questions, one group per question."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._groups: OrderedDict[int, Group] = OrderedDict()

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, groups: Sequence[Group]) -> None:
        for grp in groups:
            if not grp.informative:
                continue
            # a newer group of the same question replaces the old one and counts as newest
            self._groups.pop(grp.index, None)
            self._groups[grp.index] = grp
            while len(self._groups) > self.capacity:
                self._groups.popitem(last=False)

    def sample(self, n: int, generator: torch.Generator, exclude: set[int] = frozenset()) -> list[Group]:
        """Up to ``n`` distinct groups uniformly at random, skipping questions in ``exclude``
        (prompts trained fresh this step must not appear twice in one batch)."""
        candidates = [grp for idx, grp in self._groups.items() if idx not in exclude]
        if not candidates or n <= 0:
            return []
        order = torch.randperm(len(candidates), generator=generator)[:n].tolist()
        return [candidates[i] for i in order]

    def indices(self) -> list[int]:
        """Buffered question indices, oldest first."""
        return list(self._groups)

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "groups": [grp.__dict__ for grp in self._groups.values()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self._groups = OrderedDict((int(d["index"]), Group(**d)) for d in state["groups"])
