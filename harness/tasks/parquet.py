"""Question pools read from tables, checked with math-verify.

A table is a local parquet/JSONL/JSON file or a Hugging Face dataset name (see
:mod:`harness.tasks.tables`). The default keys fit the verl/OpenRLHF layout (e.g. the paper's
DeepScaleR subset): ``prompt`` is a chat list, ``reward_model`` a struct with ``ground_truth``,
``extra_info`` a struct with ``question`` and ``index``. Keys are dotted paths
(``extra_info.question``): a column, then struct fields.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from harness.configbase import ConfigError
from harness.tasks.base import Pool, Question, Verifier
from harness.tasks.config import EvalSetConfig, TaskConfig
from harness.tasks.extract import extract_answer, last_boxed
from harness.tasks.tables import LAYOUT_HINT, TaskFileNotFound, read_table

__all__ = ["LAYOUT_HINT", "MathVerifier", "TaskFileNotFound", "load_parquet_pool"]

INDEX_KEY = "extra_info.index"
# Longer predicted answers score 0.0 without parsing: they are never right (the longest
# DeepScaleR answer has 145 characters) and can take sympy seconds, which matters where no
# deadline can interrupt it (outside the main thread).
MAX_ANSWER_CHARS = 400
_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+")

@dataclass(frozen=True)
class _Row:
    position: int  # row number in the file
    index: Any  # extra_info.index when present
    text: str
    answer: str


class MathVerifier(Verifier):
    """math-verify equivalence of the extracted answer and the reference (LaTeX aware).

    The gold is parsed once per question and cached. Timeouts are ours (float seconds, a
    SIGALRM deadline in the main thread): math-verify's own use ``signal.alarm`` with whole
    seconds, swallow the timeout, and refuse to run outside the main thread, so we pass None.
    """

    def __init__(self, answer_format: str, timeout: float | None = 2.0) -> None:
        super().__init__(timeout)
        self.answer_format = answer_format
        self._gold: dict[str, list[Any]] = {}
        _warm_up_math_verify()

    def check(self, question: Question, completion: str) -> bool:
        answer = extract_answer(completion, self.answer_format)
        if answer is None or len(answer) > MAX_ANSWER_CHARS:
            return False
        from math_verify import parse, verify  # already imported by _warm_up_math_verify

        gold = self._gold.get(question.qid)
        if gold is None:
            gold = parse(_as_boxed(question.answer), parsing_timeout=None)
            self._gold[question.qid] = gold
        predicted = parse(_as_boxed(answer), parsing_timeout=None)
        return bool(predicted) and bool(gold) and verify(gold, predicted, timeout_seconds=None)

    def __getstate__(self) -> dict[str, Any]:
        # Parsed sympy golds are a cache, rebuilt on demand; do not ship them to workers.
        state = self.__dict__.copy()
        state["_gold"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _warm_up_math_verify()  # a fresh worker process must not import under a deadline


def load_parquet_pool(cfg: TaskConfig, name: str) -> Pool:
    """Read ``cfg.path`` (and ``cfg.eval_path`` or ``cfg.eval_sets``) into a train/eval pool.

    Rows with an empty question or answer are skipped; repeated question texts are kept once.
    Without ``eval_path`` or ``eval_sets`` a seeded ``eval_fraction`` of the distinct questions
    is held out; with either, training questions whose text is held out are dropped.
    """
    cfg.validate()
    rows = _distinct(_read_rows(cfg, "task"))
    rng = random.Random(cfg.seed)
    if cfg.max_rows is not None and cfg.max_rows < len(rows):
        rows = sorted(rng.sample(rows, cfg.max_rows), key=lambda r: r.position)
    eval_sets: dict[str, list[Question]] = {}
    if cfg.eval_sets:
        for i, es in enumerate(cfg.eval_sets):
            set_rows = _distinct(_read_rows(es, f"task.eval_sets[{i}]"))[: es.max_rows]
            eval_sets[es.name] = _questions(set_rows, f"{name}-{es.name}", eval_set=es.name)
        held_out = {q.text for qs in eval_sets.values() for q in qs}
        train_rows = [r for r in rows if r.text not in held_out]
        evals = [q for qs in eval_sets.values() for q in qs]
    elif cfg.eval_path is None:
        n_eval = min(max(1, round(cfg.eval_fraction * len(rows))), len(rows) - 1)
        held = set(rng.sample(range(len(rows)), n_eval))
        train_rows = [r for i, r in enumerate(rows) if i not in held]
        evals = _questions([r for i, r in enumerate(rows) if i in held], name)
    else:
        eval_cfg = EvalSetConfig(name="eval", path=cfg.eval_path, split=cfg.split,
                                 subset=cfg.subset, question_key=cfg.question_key,
                                 answer_key=cfg.answer_key, reference_format=cfg.reference_format)
        eval_rows = _distinct(_read_rows(eval_cfg, "task.eval_path"))
        eval_texts = {r.text for r in eval_rows}
        train_rows = [r for r in rows if r.text not in eval_texts]
        # the eval file's indices may repeat the train file's
        evals = _questions(eval_rows, f"{name}-eval")
    return Pool(
        name=name,
        train=_questions(train_rows, name),
        eval=evals,
        verifier=MathVerifier(cfg.answer_format, timeout=cfg.verifier_timeout),
        eval_sets=eval_sets,
    )


def _read_rows(cfg: TaskConfig | EvalSetConfig, prefix: str) -> list[_Row]:
    """Rows of the table ``cfg`` describes (path, split, subset, keys, filters, reference)."""
    path_field = "task.eval_path" if prefix == "task.eval_path" else f"{prefix}.path"
    key_prefix = "task" if prefix == "task.eval_path" else prefix
    table = read_table(cfg.path, cfg.split, cfg.subset, path_field)
    schema = table.schema
    question_path = _resolve(schema, cfg.question_key, f"{key_prefix}.question_key", cfg.path)
    answer_path = _resolve(schema, cfg.answer_key, f"{key_prefix}.answer_key", cfg.path)
    index_path = _try_resolve(schema, INDEX_KEY)
    texts = _column_values(table, question_path)
    answers = _column_values(table, answer_path)
    indices = _column_values(table, index_path) if index_path else [None] * table.num_rows
    if index_path and len(set(indices)) != len(indices):
        indices = [None] * table.num_rows  # ids must be unique: fall back to row numbers
    keep = [True] * table.num_rows
    for column, allowed in cfg.where.items():
        values = _column_values(table, _resolve(schema, column, f"{key_prefix}.where", cfg.path))
        wanted = {str(v) for v in allowed}
        keep = [k and str(v) in wanted for k, v in zip(keep, values, strict=True)]
    rows = []
    for position, (text, answer, index) in enumerate(zip(texts, answers, indices, strict=True)):
        reference = _reference(answer, cfg.reference_format)
        if not keep[position] or text is None or not str(text).strip() or reference is None:
            continue
        rows.append(_Row(position, index, str(text), reference))
    return rows


def _reference(value: Any, fmt: str) -> str | None:
    """The reference answer in a cell: lists joined, $...$ unwrapped, then read per ``fmt``."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value if v is not None)
    text = str(value).strip()
    if fmt == "boxed":
        text = last_boxed(text) or ""
    elif fmt == "after_hashes":
        text = text.rsplit("####", 1)[-1].strip() if "####" in text else ""
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return text or None


def _resolve(schema: Any, key: str, field: str, path_str: str) -> list[str]:
    """``key`` as [column, field, ...] in ``schema``, or a ConfigError listing what exists."""
    found = _try_resolve(schema, key)
    if found is None:
        available = ", ".join(_leaf_paths(schema))
        raise ConfigError(
            field, key, f"no such column or key in {path_str}; available: {available}"
        )
    return found


def _try_resolve(schema: Any, key: str) -> list[str] | None:
    import pyarrow as pa

    parts = key.split(".")
    # The longest prefix that names a column wins, so a column called "a.b" still works.
    for cut in range(len(parts), 0, -1):
        column = ".".join(parts[:cut])
        if column not in schema.names:
            continue
        kind = schema.field(column).type
        for part in parts[cut:]:
            if not pa.types.is_struct(kind) or kind.get_field_index(part) < 0:
                return None
            kind = kind.field(part).type
        return [column, *parts[cut:]]
    return None


def _leaf_paths(schema: Any) -> list[str]:
    import pyarrow as pa

    def walk(prefix: str, kind: Any) -> list[str]:
        if not pa.types.is_struct(kind):
            return [prefix]
        return [p for f in kind for p in walk(f"{prefix}.{f.name}", f.type)]

    return [p for f in schema for p in walk(f.name, f.type)]


def _column_values(table: Any, key_path: list[str]) -> list[Any]:
    import pyarrow.compute as pc

    values = table.column(key_path[0]).combine_chunks()
    for part in key_path[1:]:
        values = pc.struct_field(values, part)
    return values.to_pylist()


def _distinct(rows: list[_Row]) -> list[_Row]:
    """First occurrence of each question text (DeepScaleR repeats about 1% of them)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row.text not in seen:
            seen.add(row.text)
            kept.append(row)
    return kept


def _questions(rows: list[_Row], prefix: str, eval_set: str | None = None) -> list[Question]:
    extra = {} if eval_set is None else {"eval_set": eval_set}
    return [
        Question(
            qid=f"{prefix}-{row.position if row.index is None else row.index}",
            text=row.text,
            answer=row.answer,
            meta={"row": row.position, "index": row.index, **extra},
        )
        for row in rows
    ]


def _as_boxed(answer: str) -> str:
    # Wrapping in \boxed{} makes math-verify read the whole string as one LaTeX answer, for
    # golds like "-\frac{\sqrt{3}}{3}" and "7/27" and for plain predicted numbers alike.
    return "\\boxed{" + answer + "}"


class _DropTimeoutNotice(logging.Filter):
    """math-verify warns that timeouts are disabled when given None; ours replace them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


def _warm_up_math_verify() -> None:
    """Import math-verify and run one check, outside any deadline.

    Its first call imports modules and builds the LaTeX parser; an interrupt landing there
    leaves half-initialised modules behind and every later LaTeX parse silently fails.
    """
    global _warmed_up
    if _warmed_up:
        return
    for logger_name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(logger_name).addFilter(_DropTimeoutNotice())
    from math_verify import parse, verify

    gold = parse(_as_boxed("\\frac{1}{2}"), parsing_timeout=None)
    if not verify(gold, parse(_as_boxed("0.5"), parsing_timeout=None), timeout_seconds=None):
        raise RuntimeError("math-verify self-check failed: 0.5 != \\frac{1}{2}")
    _warmed_up = True


_warmed_up = False
