"""Task pools for selbench: questions with verifiable answers and binary verifiers.

``load_pool(cfg, name)`` builds a :class:`Pool` from a :class:`TaskConfig`: reasoning-gym
tiers generated offline, or a verl/OpenRLHF-layout parquet file checked with math-verify (its
rows validated as it is read). ``check_pool_size(pool, batch_size, field)`` stops a run whose
pool cannot fill a batch or has nothing to evaluate on, before any model loads.
"""

from __future__ import annotations

from harness.config.base import ConfigError
from harness.instrument.tasks.base import Pool, Question, TaskDataError, check_pool_size
from harness.instrument.tasks.config import TaskConfig
from harness.instrument.tasks.extract import extract_answer
from harness.instrument.tasks.verifier import Verifier

__all__ = ["Pool", "Question", "TaskConfig", "TaskDataError", "Verifier", "check_pool_size",
           "extract_answer", "load_pool"]


def load_pool(cfg: TaskConfig, name: str) -> Pool:
    """Build the pool ``name`` described by ``cfg`` (validated first)."""
    if cfg.source == "reasoning_gym":
        from harness.instrument.tasks.gym import load_gym_pool

        return load_gym_pool(cfg, name)
    if cfg.source == "parquet":
        from harness.instrument.tasks.parquet import load_parquet_pool

        return load_parquet_pool(cfg, name)
    raise ConfigError("task.source", cfg.source, "one of ('reasoning_gym', 'parquet')")
