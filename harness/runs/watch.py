"""Live views of a run (``watch.*``): TensorBoard event files written from the same metrics dict
as ``metrics.csv``, which stays the source of truth. Both executors call :class:`Watch`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Watch:
    """Writers switched on by ``cfg.watch``; a no-op when none is. ``resume_step``: the step a
    resumed run restarts after, whose later events (from before the kill) are purged so that
    TensorBoard shows each step once."""

    def __init__(self, cfg: Any, run_dir: Path, resume_step: int = 0) -> None:
        self._tb = None
        if cfg.watch.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"),
                                     purge_step=resume_step + 1 if resume_step else None)

    def step(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
