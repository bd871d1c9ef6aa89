"""Live views of a run (``watch.*``): TensorBoard event files and an offline W&B run, written from
the same metrics dict as ``metrics.csv``, which stays the source of truth. Both executors call
:class:`Watch`.

W&B runs offline, always: the machines selbench targets have no network at run time, and an
offline run can be uploaded later (``wandb sync RESULTS/runs/<run>/wandb/offline-run-*``). Its
W&B id is derived from the run id, so a resumed run continues the same W&B run; the resumed part
is a second offline file (W&B merges them on sync).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def wandb_id(run_id: str) -> str:
    """A W&B run id for a selbench run id (W&B ids allow fewer characters than our run ids)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


class Watch:
    """Writers switched on by ``cfg.watch``; a no-op when none is. ``resume_step``: the step a
    resumed run restarts after, whose later events (from before the kill) are purged so that
    TensorBoard shows each step once."""

    def __init__(self, cfg: Any, run_dir: Path, resume_step: int = 0) -> None:
        self._tb = None
        self._wandb = None
        run_dir = Path(run_dir)
        if cfg.watch.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"),
                                     purge_step=resume_step + 1 if resume_step else None)
        if cfg.watch.wandb:
            import wandb

            self._wandb = wandb.init(
                mode="offline", dir=str(run_dir), project=cfg.watch.wandb_project,
                name=run_dir.name, id=wandb_id(run_dir.name), resume="allow",
                config=cfg.to_dict(),
                # no console capture, system sampling or code copy: the run folder keeps
                # its own log and provenance
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                        save_code=False),
            )

    def step(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, float(value), step)
        if self._wandb is not None:
            self._wandb.log({key: float(value) for key, value in metrics.items()}, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
