"""What both executors offer a strategy while it selects (strategies.base.SelectionContext),
apart from how they roll out: step, pool and batch sizes, and the frozen predictor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.config import RunConfig


class ContextBase:
    """Executors subclass this and add ``rollout`` (and their cost counters)."""

    def __init__(self, cfg: RunConfig, pool_size: int, scorer: Any, step: int) -> None:
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
