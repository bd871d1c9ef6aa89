"""A small byte-level BPE tokenizer for the tiny policies, shaped exactly like Qwen2's.

Why Qwen2's shape: the tiny policies are ``Qwen2ForCausalLM`` (so vLLM can serve them), and for
``model_type == "qwen2"`` transformers' ``AutoTokenizer`` ignores the pipeline stored in
``tokenizer.json`` and rebuilds a ``Qwen2Tokenizer`` from its vocab and merges, with Qwen2's own
normalizer (NFC), split regex and byte-level pre-tokenizer/decoder. A tokenizer trained with any
other pipeline would load back silently different. So we train with that very pipeline, save a
``Qwen2Tokenizer`` and check that the reloaded copy round-trips.

Round-trip guarantee: ``decode(encode(text)) == text`` for every NFC-normalised string (the
byte-level alphabet covers every byte, so no character is ever unknown). Strings that are not in
NFC come back in NFC: Qwen2's normalizer composes them before encoding.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Tokenizer

# Reuse transformers' constant rather than a copy: it is what Qwen2Tokenizer rebuilds with, and a
# copy could drift from it on upgrade. Digits are split one by one (``\p{N}``), which helps
# arithmetic: every number is spelled with the same ten digit tokens.
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

# 256 byte symbols + eos; anything above is learned merges
from harness.instrument.tinyspec import MIN_VOCAB_SIZE

EOS_TOKEN = "<|endoftext|>"

# Strings checked after every save; they exercise spaces, newlines, digits, signs and non-ASCII.
_ROUND_TRIP_PROBES = (
    "State the final answer to the following arithmetic problem: 4 - 1 - 7 =\n -4",
    "  two  spaces,\ttab,\n\nnewlines\r\n and -12.5e-3 * (7/8)",
    "Größe, naïve café, 東京, emoji 🙂, math ∑ x² ≤ ∞",
)


def _qwen2_pipeline() -> Tokenizer:
    """An untrained BPE with exactly the pipeline ``Qwen2Tokenizer.__init__`` builds."""
    tok = Tokenizer(
        BPE(
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def _vocab_and_merges(tok: Tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def check_round_trip(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> None:
    """Raise ``RuntimeError`` naming the first text that does not survive encode + decode.

    Texts are compared in NFC, the form the tokenizer normalises to (see module docstring).
    """
    for text in texts:
        expected = unicodedata.normalize("NFC", text)
        ids = tokenizer.encode(text, add_special_tokens=False)
        back = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if back != expected:
            raise RuntimeError(f"tokenizer does not round-trip {text!r}: got {back!r}")


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: Path,
    *,
    model_max_length: int | None = None,
) -> PreTrainedTokenizerFast:
    """Train a Qwen2-shaped byte-level BPE on ``texts``, save it to ``out_dir`` and reload it.

    ``vocab_size`` is an upper bound: a small corpus may run out of merges earlier, so use
    ``len(tokenizer)`` for the model's embedding size. ``<|endoftext|>`` is the only special
    token and serves as eos, pad and unk (as in Qwen2). The returned tokenizer is the copy loaded
    back with ``AutoTokenizer``, i.e. exactly what later users of ``out_dir`` get.
    ``model_max_length`` (the model's context) lets the tokenizer warn about over-long inputs.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size must be >= {MIN_VOCAB_SIZE} (256 bytes + eos), got {vocab_size}"
        )
    texts = list(texts)
    tok = _qwen2_pipeline()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        # All 256 byte symbols up front, whether or not the corpus uses them: this is what lets
        # any unseen string be encoded (the byte-level equivalent of byte fallback).
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    vocab, merges = _vocab_and_merges(tok)

    # Saving a Qwen2Tokenizer (not a generic backend) makes the stored tokenizer_class match what
    # AutoTokenizer picks for a qwen2 model directory, so both load paths give the same object.
    hf_tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN)
    if model_max_length is not None:
        hf_tok.model_max_length = model_max_length
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_tok.save_pretrained(str(out_dir))

    loaded = AutoTokenizer.from_pretrained(str(out_dir), local_files_only=True)
    # The check is cheap and catches the silent-rebuild failure mode described above.
    check_round_trip(loaded, [*_ROUND_TRIP_PROBES, *texts[:64]])
    if loaded.convert_tokens_to_ids(EOS_TOKEN) != vocab[EOS_TOKEN]:
        raise RuntimeError(f"{EOS_TOKEN} lost its id after reload from {out_dir}")
    return loaded
