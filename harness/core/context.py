"""What both executors offer a strategy while it selects (strategies.base.SelectionContext),
apart from how they roll out: step, pool and batch sizes, the frozen predictor, and how a step's
``reuse=True`` rollouts add up to groups (:class:`KeptGroups`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from harness.config import RunConfig
from harness.core.step import ExtraCost

T = TypeVar("T")


class KeptGroups(Generic[T]):
    """A step's ``reuse=True`` rollouts by pool index, in whatever form an executor holds them.

    A rollout of G samples is kept as it is (a newer one of the same prompt replaces it). Smaller
    ones accumulate per prompt: screening samples plus continuation samples form one group
    (SPEED), and a prompt counts as rolled out (in :attr:`complete`) once its kept samples number
    exactly G. ``join`` appends one holding to another; ``size`` counts a holding's samples.
    """

    def __init__(self, group_size: int, join: Callable[[T, T], T], size: Callable[[T], int]) -> None:
        self.group_size = group_size
        self._join = join
        self._size = size
        self.complete: dict[int, T] = {}
        self._partial: dict[int, T] = {}

    def add(self, index: int, item: T) -> None:
        g = self.group_size
        if self._size(item) == g and index not in self._partial:
            self.complete[index] = item
            return
        if index in self.complete:
            raise ValueError(f"prompt {index} already has a full group of {g} kept samples this "
                             "step; more reuse rollouts of it cannot join that group")
        merged = self._join(self._partial[index], item) if index in self._partial else item
        count = self._size(merged)
        if count > g:
            raise ValueError(f"prompt {index} would have {count} kept samples this step, more "
                             f"than the group size {g}: reuse rollouts of a prompt must add up to G")
        if count == g:
            self.complete[index] = merged
            self._partial.pop(index, None)
        else:
            self._partial[index] = merged


class ContextBase:
    """Executors subclass this and add ``rollout``, paying its cost into :attr:`extra`."""

    def __init__(self, cfg: RunConfig, pool_size: int, scorer: Any, step: int) -> None:
        self.extra = ExtraCost()  # the strategy's own rollouts this step, counted as cost
        self._cfg = cfg
        self._pool_size = pool_size
        self._scorer = scorer
        self._step = step

    @property
    def step(self) -> int:
        return self._step

    @property
    def pool_size(self) -> int:
        return self._pool_size

    @property
    def group_size(self) -> int:
        return self._cfg.train.group_size

    @property
    def batch_size(self) -> int:
        return self._cfg.train.batch_size

    def predict(self, ref_indices: Sequence[int], ref_labels: Sequence[float]) -> np.ndarray:
        if self._scorer is None:
            raise RuntimeError(f"strategy '{self._cfg.strategy_name}' asked for predictions but "
                               "its registry entry does not declare uses_predictor")
        return self._scorer.score(list(ref_indices), list(ref_labels))
