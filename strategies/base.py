"""The strategy interface: ``select`` prompts, receive ``update`` feedback, expose state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class GroupFeedback:
    """What happened to one selected prompt in a step: its index and the G rewards."""

    index: int
    rewards: tuple[float, ...]

    @property
    def pass_rate(self) -> float:
        return sum(self.rewards) / len(self.rewards) if self.rewards else 0.0

    @property
    def informative(self) -> bool:
        """A group teaches something only if its rewards differ (non-zero advantage)."""
        return len(set(self.rewards)) > 1


@dataclass(frozen=True)
class StepFeedback:
    """Per-step feedback: one entry per group trained on (fresh rollouts of selected prompts)."""

    step: int
    groups: tuple[GroupFeedback, ...]


@runtime_checkable
class SelectionContext(Protocol):
    """What the backbone offers a strategy while it selects. Executor-agnostic by design."""

    @property
    def step(self) -> int:
        """The training step about to run, counted from 1 (the first step is 1)."""
        ...

    @property
    def pool_size(self) -> int:
        """Number of questions in the training pool; strategies select indices in [0, size)."""
        ...

    @property
    def group_size(self) -> int:
        """Samples per prompt (G) that the backbone trains on for each selected prompt (it
        draws G, or more for a :class:`RolloutSelector`)."""
        ...

    @property
    def batch_size(self) -> int:
        """Prompts per training step (B) including replayed ones; ``select`` may be asked for
        fewer (the fresh share) when rollout replay is on."""
        ...

    def rollout(self, indices: Sequence[int], n_samples: int, reuse: bool = False) -> list[list[float]]:
        """Roll out extra prompts with the current policy and return their rewards.

        Used by strategies that need fresh difficulty labels (DOTS references, oracle) or that
        filter after rollout (DAPO). The backbone counts the samples and tokens and keeps the
        time on the clock. With ``reuse=True`` and ``n_samples == group_size`` the groups are
        kept for this step: if :meth:`Strategy.select` returns one of these indices, the backbone
        trains on the rollouts already made instead of sampling the prompt again, and (with
        rollout replay on) informative groups not trained on join the replay buffer. Smaller
        ``reuse=True`` rollouts of a prompt add up within the step (screening samples, then the
        rest of the group: SPEED); once they number ``group_size`` they are kept as one group,
        and more than ``group_size`` is an error.
        """
        ...

    def predict(self, ref_indices: Sequence[int], ref_labels: Sequence[float]) -> np.ndarray:
        """Predicted pass rate of every pool question, given observed pass rates (labels) of
        the reference questions ``ref_indices``: the frozen attention-based predictor of DOTS,
        before calibration. Shape ``[pool_size]``. Raises if the run has no predictor."""
        ...


class Strategy(Protocol):
    """A data-selection strategy. Implementations stay small, pure Python, and deterministic
    given their seed: the same config and seed give the same selections."""

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        """Return ``n`` distinct pool indices to train on at step ``ctx.step``."""
        ...

    def update(self, feedback: StepFeedback) -> None:
        """Observe the rewards of the groups trained on this step."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state for checkpoints (including random generator state)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` so a resumed run continues exactly."""
        ...


@runtime_checkable
class RolloutSelector(Protocol):
    """Optional hook beside :class:`Strategy`: sample more responses per prompt than are trained
    on, then choose which to train on (PODS down-sampling). A strategy that has both methods
    gets, for every prompt the backbone rolls out for training, ``samples_per_prompt(G)``
    responses instead of G; ``choose_rollouts`` then picks the G to train on from their rewards.
    The backbone counts all of them as generation cost, and :meth:`Strategy.update` sees all
    ``n`` rewards of each such prompt (its observed pass rate), not only the trained G. Groups
    the strategy already rolled out with ``ctx.rollout(..., reuse=True)`` are trained as they
    are."""

    def samples_per_prompt(self, group_size: int) -> int:
        """n >= G responses to sample for each prompt rolled out for training."""
        ...

    def choose_rollouts(self, rewards: Sequence[float], group_size: int) -> list[int]:
        """Positions (distinct, in ``[0, len(rewards))``) of the ``group_size`` responses of one
        prompt to train on, given the rewards of all its responses."""
        ...


def selects_rollouts(obj: object) -> bool:
    """Whether a strategy (an instance or its class) implements :class:`RolloutSelector`."""
    return all(callable(getattr(obj, name, None))
               for name in ("samples_per_prompt", "choose_rollouts"))


@runtime_checkable
class ReportsPredictions(Protocol):
    """Optional: a strategy that predicts pass rates (DOTS) reports its calibrated predictions
    of the prompts it chose, so that each step's records hold predicted beside observed."""

    def predicted_pass_rates(self, indices: list[int]) -> list[float] | None:
        """Predictions for ``indices`` (prompts this strategy chose), or None when it has none."""
        ...
