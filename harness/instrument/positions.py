"""Prompts that do not fit the model: found when the pool is built, before the model loads.

A prompt (the question in the model's template, chat turns included) plus ``train.max_new_tokens``
must fit the model's positions (``max_position_embeddings`` in its ``config.json``). A rotary
model such as Qwen2 does not fail past that length: it runs on, with positions it was never
trained on, and the run measures nonsense. So each question is counted with the model's own
tokenizer (exact, and cheap: a fast tokenizer does thousands of prompts a second) and a pool with
prompts too long is either trimmed (``task.drop_bad_rows``, with a count on stderr) or stopped
with one line naming the pool's file, the number of questions and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from harness.config import ModelConfig
from harness.instrument import policy
from harness.instrument.tasks import Pool, Question, TaskDataError

# trimming more than this share of a pool would change what the pair measures: an error instead
MAX_DROP_SHARE = 0.5


def max_positions(model_dir: Path) -> int | None:
    """The model's context length from ``config.json`` (None when it does not say)."""
    try:
        data = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if isinstance(data.get(key), int):
            return int(data[key])
    return None


def prompt_lengths(model: ModelConfig, tokenizer: Any, questions: list[Question]) -> list[int]:
    """Tokens of each question's rendered prompt, as the trainer tokenizes it."""
    if not questions:
        return []
    prompts = [policy.render_prompt(model, tokenizer, q.text) for q in questions]
    return [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]


def fit_pool(pool: Pool, model: ModelConfig, tokenizer: Any, limit: int | None,
             max_new_tokens: int, drop: bool, model_dir: Path) -> Pool:
    """``pool`` without the questions whose prompt plus ``max_new_tokens`` exceeds ``limit``
    positions (``drop``), or :class:`TaskDataError` (not ``drop``, or too many to drop)."""
    if limit is None:
        return pool
    budget = limit - max_new_tokens
    origin = f" (from {pool.origin})" if pool.origin else ""
    where = f"model {model.name or model.kind!r} has {limit} positions ({model_dir}/config.json)"
    if budget <= 0:
        raise TaskDataError("train.max_new_tokens", max_new_tokens,
                            f"the {where}: no room for any prompt; lower train.max_new_tokens "
                            "or use a model with more positions")
    sets = {"train": pool.train, "eval": pool.eval, **pool.eval_sets}
    lengths = {name: prompt_lengths(model, tokenizer, qs) for name, qs in sets.items()}
    too_long = {name: [i for i, n in enumerate(ns) if n > budget] for name, ns in lengths.items()}
    n_bad = len({sets[k][i].text for k, idx in too_long.items() for i in idx})
    if not n_bad:
        return pool
    n_all = len({q.text for qs in sets.values() for q in qs})
    longest = max(n for ns in lengths.values() for n in ns)
    what = (f"pool {pool.name!r}{origin}: {n_bad} of its {n_all} questions are too long for the "
            f"model: prompt (model.prompt_template applied) plus train.max_new_tokens="
            f"{max_new_tokens} needs up to {longest + max_new_tokens} positions, the {where}")
    fix = ("shorten model.prompt_template or the questions, lower train.max_new_tokens, or use "
           "a model with more positions (model.tiny.max_position for a tiny model)")
    if not drop:
        raise TaskDataError("task.drop_bad_rows", drop,
                            f"{what}; set task.drop_bad_rows: true to drop them, or {fix}")
    worst = max(len(too_long[k]) / max(len(sets[k]), 1) for k in sets)
    if worst > MAX_DROP_SHARE:
        raise TaskDataError("task", pool.name, f"{what}: too many to drop; {fix}")
    print(f"warning: {what}; dropped them (task.drop_bad_rows: false makes this an error)",
          file=sys.stderr)
    drop_at = {k: set(idx) for k, idx in too_long.items()}
    kept = {k: [q for i, q in enumerate(qs) if i not in drop_at[k]] for k, qs in sets.items()}
    return dataclasses.replace(pool, train=kept.pop("train"), eval=kept.pop("eval"),
                               eval_sets=kept)


def fit_for_model(pool: Pool, cfg: Any, progress: bool = True) -> Pool:
    """:func:`fit_pool` for run config ``cfg``: its model built first when missing (a tiny
    model's tokenizer is part of its build), then counted with that model's tokenizer. Every
    consumer of a run's pool (trainer, predictor fit) calls this, so they see the same pool."""
    from harness.instrument.models import load_tokenizer

    model_dir = policy.build(cfg.model, progress=progress)
    return fit_pool(pool, cfg.model, load_tokenizer(model_dir), max_positions(model_dir),
                    cfg.train.max_new_tokens, cfg.task.drop_bad_rows, model_dir)
