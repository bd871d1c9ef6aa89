"""Executors: what runs a run's GRPO loop. One entry point for the CLI and sweeps: :func:`run`.

- ``inprocess``: :func:`harness.executors.trainer.run` (torch + transformers in this process).
- ``openrlhf``: :func:`harness.executors.openrlhf.run` (OpenRLHF on a Ray cluster, GPUs).

Both write the same run records under ``results_root/runs/<run_id>/``. The executor is part of
the config (``executor.name``), hence of the run id. Imports stay lazy: validating a config must
not pull in torch, Ray or OpenRLHF.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.config.base import ConfigError
from harness.executors.config import EXECUTORS, ExecutorConfig, OpenRLHFConfig

__all__ = ["EXECUTORS", "ExecutorConfig", "OpenRLHFConfig", "check_inprocess", "run", "with_executor"]


def with_executor(cfg: Any, name: str | None) -> Any:
    """``cfg`` with ``executor.name`` set (``None`` keeps the config's own), validated."""
    if name is None or name == cfg.executor.name:
        return cfg
    out = dataclasses.replace(cfg, executor=dataclasses.replace(cfg.executor, name=name))
    out.validate()
    return out


def check_inprocess(cfg: Any) -> None:
    """Settings the in-process executor cannot honour stop the run before any work."""
    if cfg.eval.top_p != 1.0:
        raise ConfigError("eval.top_p", cfg.eval.top_p, "the in-process executor samples the full "
                          "distribution: set eval.top_p=1.0 or use --executor openrlhf")
    if len(cfg.task.eval_sets) > 1:
        # its evaluate() is the mean over all questions; the mean over sets
        # (harness.instrument.evalsets.accuracy) is what several named sets call for
        raise ConfigError("task.eval_sets", [e.name for e in cfg.task.eval_sets],
                          "the in-process executor averages over questions, not sets: keep one "
                          "eval set or use --executor openrlhf")


def run(cfg: Any, results_root: Path, progress: bool = True,
        dry_run: bool = False) -> tuple[Path, dict[str, Any] | None]:
    """Run (resume, or find finished) ``cfg`` with its executor; returns (folder, summary).

    ``dry_run`` (OpenRLHF only) prints the launch and returns a ``None`` summary.
    """
    if cfg.executor.name == "openrlhf":
        from harness.executors import openrlhf

        return openrlhf.run(cfg, results_root, dry_run=dry_run, progress=progress)
    if dry_run:
        raise ConfigError("--dry-run", True, "prints an OpenRLHF launch: add --executor openrlhf")
    check_inprocess(cfg)
    from harness.executors import trainer

    return trainer.run(cfg, results_root, progress=progress)
