"""Tiny Qwen2 policies built on the spot: tokenizer, seeded init and a supervised warm start.

A freshly initialised model solves nothing, so GRPO would see only all-wrong groups. The warm
start (a few hundred supervised steps on prompt -> completion pairs the caller chooses) gives the
policy a spread of pass rates to select from. Builds are deterministic (same spec + examples ->
identical weights on the same machine and thread count) and atomic: a build directory either
holds a complete model with ``build.json`` or does not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers/huggingface_hub read it

import torch
import transformers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM

from harness.instrument.models.tokenizer import train_tokenizer

# re-exported: the spec lives in a torch-free module so that config validation stays light
from harness.instrument.tinyspec import MIN_HEAD_DIM, MIN_VOCAB_SIZE, TinyModelSpec  # noqa: F401

BUILD_INFO = "build.json"
LOSS_CURVE_POINTS = 50


# --------------------------------------------------------------------------- build directories


def is_complete(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a finished build (its ``build.json`` is written last)."""
    return (Path(model_dir) / BUILD_INFO).is_file()


def read_build_info(model_dir: Path) -> dict | None:
    """The ``build.json`` of a finished build, or None when the directory is not complete."""
    path = Path(model_dir) / BUILD_INFO
    return json.loads(path.read_text()) if path.is_file() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(out_dir: Path) -> None:
    """Delete temp dirs of earlier builds of ``out_dir`` whose process died (e.g. was killed)."""
    for tmp in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_build_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temp dir beside ``out_dir``; on success it replaces ``out_dir`` by rename.

    The caller writes the build info file last. A build that fails or is killed leaves only a
    hidden ``.<name>.tmp-<pid>`` dir (removed on failure, or by the next build if killed), never a
    half-written ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if not is_complete(tmp):
            raise RuntimeError(f"build into {out_dir} finished without writing {BUILD_INFO}")
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            out_dir.rename(old)  # rename() onto a non-empty directory fails, so move it aside
        try:
            tmp.rename(out_dir)
        except OSError:
            if old.exists() and not out_dir.exists():
                old.rename(out_dir)  # keep the previous build rather than nothing
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- torch settings


def default_build_threads() -> int:
    """Threads for a build: ``$OMP_NUM_THREADS`` (or ``$MKL_NUM_THREADS``) if set, else 1.

    Why not all cores: (1) the weights depend on the thread count (matmul reductions split
    differently), so a fixed default keeps builds reproducible across machines and loads;
    (2) on a 2-core machine shared with other busy processes, 2 OpenMP threads spin-waiting on
    each other made tiny-model steps 10-50x slower, while 1 thread is never worse than ~2x.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


@contextlib.contextmanager
def _build_torch_settings(threads: int) -> Iterator[None]:
    """Thread count, deterministic algorithms and a private RNG for the build; the caller's
    global torch settings are restored afterwards."""
    det_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    # warn_only: an op without a deterministic CPU kernel should not abort a build.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        # fork_rng: seeding the init must not reset the caller's global RNG stream.
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.use_deterministic_algorithms(det_before, warn_only=warn_only_before)
        torch.set_num_threads(threads_before)


# --------------------------------------------------------------------------- warm start data


def examples_digest(examples: Sequence[tuple[str, str]]) -> str:
    """sha256 of the examples, stored in build.json so callers can tell whose model it is."""
    h = hashlib.sha256()
    for prompt, completion in examples:
        for part in (prompt, completion):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[tuple[str, str]], max_len: int
) -> list[tuple[list[int], int]]:
    """(ids of prompt + completion + eos, number of prompt tokens) per example.

    Prompt and completion are tokenized separately, as at rollout time: the policy continues the
    tokenized prompt, so training on a joint tokenization could teach token boundaries it never
    meets when generating. Over-long sequences keep their start and lose their tail.
    """
    eos = tokenizer.eos_token_id
    encoded = []
    for prompt, completion in examples:
        p = tokenizer.encode(prompt, add_special_tokens=False)
        c = tokenizer.encode(completion, add_special_tokens=False)
        ids = (p + c + [eos])[:max_len]
        encoded.append((ids, min(len(p), len(ids))))
    return encoded


def collate(encoded: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are -100 on prompt and padding so only completion+eos count."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(encoded):
        t = torch.tensor(ids, dtype=torch.long)
        input_ids[row, : len(ids)] = t
        attention[row, : len(ids)] = 1
        labels[row, n_prompt : len(ids)] = t[n_prompt:]
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """Index batches drawn epoch by epoch from seeded permutations (every example seen once per
    epoch); a private generator keeps the order independent of any other RNG use."""
    gen = torch.Generator().manual_seed(seed)
    perm: list[int] = []
    for _ in range(steps):
        batch: list[int] = []
        while len(batch) < batch_size:
            if not perm:
                perm = torch.randperm(n, generator=gen).tolist()
            take = min(batch_size - len(batch), len(perm))
            batch += perm[:take]
            perm = perm[take:]
        yield batch


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 10% (at most 20 steps), then cosine decay to 10%."""
    warm = max(1, min(20, total // 10))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def completion_loss(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str]],
    batch_size: int = 64,
) -> float:
    """Mean per-token loss of ``model`` on the completion+eos tokens of ``examples``."""
    max_len = model.config.max_position_embeddings
    encoded = encode_examples(tokenizer, examples, max_len)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = collate(encoded[start : start + batch_size], tokenizer.pad_token_id)
            n_tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * n_tokens
            count += n_tokens
    model.train(was_training)
    return total / max(1, count)


def warm_start(
    model: Qwen2ForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str]],
    spec: TinyModelSpec,
    progress: bool = True,
) -> list[float]:
    """Supervised steps on completion tokens; returns the loss of every step."""
    if spec.warm_steps == 0:
        return []
    encoded = encode_examples(tokenizer, examples, spec.max_position)
    optim = torch.optim.AdamW(
        model.parameters(), lr=spec.warm_lr, weight_decay=spec.warm_weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: _lr_factor(s, spec.warm_steps))
    model.train()
    losses: list[float] = []
    bar = tqdm(total=spec.warm_steps, desc="warm start", disable=not progress, leave=False)
    for idx in _batches(len(encoded), spec.warm_batch_size, spec.warm_steps, spec.seed):
        batch = collate([encoded[i] for i in idx], tokenizer.pad_token_id)
        loss = model(**batch).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        # Clipping keeps the first high-lr steps of a random init from blowing up.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    return losses


def _loss_curve(losses: list[float]) -> list[list[float]]:
    """About LOSS_CURVE_POINTS [step, loss] pairs, always including the first and last step."""
    if not losses:
        return []
    every = max(1, len(losses) // LOSS_CURVE_POINTS)
    steps = sorted({*range(0, len(losses), every), len(losses) - 1})
    return [[s + 1, round(losses[s], 5)] for s in steps]


# --------------------------------------------------------------------------- the build


def make_config(spec: TinyModelSpec, tokenizer: PreTrainedTokenizerBase) -> Qwen2Config:
    """The ``Qwen2Config`` for ``spec``; the embedding matches the tokenizer's actual size."""
    eos = tokenizer.eos_token_id
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position,
        tie_word_embeddings=spec.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": float(spec.rope_theta)},
        use_sliding_window=False,
        attention_dropout=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )


def init_model(spec: TinyModelSpec, tokenizer: PreTrainedTokenizerBase) -> Qwen2ForCausalLM:
    """A freshly initialised model; the seed alone fixes its weights."""
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(make_config(spec, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.eos_token_id
    return model


def build_tiny_model(
    spec: TinyModelSpec,
    examples: Sequence[tuple[str, str]],
    out_dir: Path,
    progress: bool = True,
    threads: int | None = None,
) -> dict:
    """Build a tiny policy into ``out_dir`` (replacing any previous build) and return build.json.

    ``examples`` are (prompt, completion) pairs: they train the tokenizer and, for
    ``spec.warm_steps`` steps, the model (loss on completion + eos only). The result loads with
    :func:`harness.instrument.models.load_policy`. ``threads`` (default :func:`default_build_threads`) is
    recorded in build.json: identical weights need the same thread count.
    """
    spec.validate()
    if not examples:
        raise ValueError("build_tiny_model needs at least one (prompt, completion) example")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    threads = threads or default_build_threads()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    with _build_torch_settings(threads), atomic_build_dir(out_dir) as tmp:
        texts = [part for pair in examples for part in pair]
        tokenizer = train_tokenizer(texts, spec.vocab_size, tmp, model_max_length=spec.max_position)
        model = init_model(spec, tokenizer)
        losses = warm_start(model, tokenizer, examples, spec, progress=progress)
        model.save_pretrained(str(tmp))
        lengths = [len(ids) for ids, _ in encode_examples(tokenizer, examples, 1 << 30)]
        tail = losses[-10:]
        info = {
            "kind": "tiny",
            "spec": asdict(spec),
            "n_params": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "n_examples": len(examples),
            "examples_sha256": examples_digest(examples),
            "mean_tokens_per_example": round(sum(lengths) / len(lengths), 2),
            "max_tokens_per_example": max(lengths),
            "initial_loss": losses[0] if losses else None,
            "final_loss": sum(tail) / len(tail) if tail else None,
            "loss_curve": _loss_curve(losses),
            "seconds": round(time.perf_counter() - started, 2),
            "torch_threads": threads,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        # Written last: its presence is what marks the directory complete.
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info
