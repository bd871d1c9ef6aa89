"""Policies: tiny Qwen2 models built on the spot, and SmolLM2-135M-Instruct converted from GGUF.

Every model directory here is a plain transformers checkpoint (config, safetensors, tokenizer)
that :func:`load_policy` opens. Nothing is ever fetched from the Hugging Face Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

# Set before transformers/huggingface_hub are imported: they read it once, at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from harness.instrument.models.smollm2 import SmolLM2NotInstalled, smollm2_dir
from harness.instrument.models.tiny import (
    TinyModelSpec,
    build_tiny_model,
    completion_loss,
    is_complete,
    read_build_info,
)
from harness.instrument.models.tokenizer import check_round_trip, train_tokenizer

__all__ = [
    "SmolLM2NotInstalled",
    "TinyModelSpec",
    "build_tiny_model",
    "check_round_trip",
    "completion_loss",
    "is_complete",
    "load_policy",
    "load_tokenizer",
    "read_build_info",
    "smollm2_dir",
    "train_tokenizer",
]


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a local model dir, set up for batched generation.

    Left padding, because generation appends after the last position of every row; the pad token
    falls back to eos for models that define none.
    """
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(
    path: Path, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a local causal LM dir (tiny build or converted SmolLM2) in eval mode with its tokenizer."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model at {path} (config.json missing)")
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    model.eval()
    # generate() warns and guesses when the pad id is unset; make it the tokenizer's.
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
