"""Question pools read from verl/OpenRLHF-layout parquet files, checked with math-verify.

The layout (e.g. the paper's DeepScaleR subset): ``prompt`` is a chat list, ``reward_model`` a
struct with ``ground_truth``, ``extra_info`` a struct with ``question`` and ``index``. Keys are
dotted paths (``extra_info.question``): a column, then struct fields.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.configbase import ConfigError
from harness.tasks.base import Pool, Question, Verifier
from harness.tasks.config import TaskConfig
from harness.tasks.extract import extract_answer

INDEX_KEY = "extra_info.index"
# Longer predicted answers score 0.0 without parsing: they are never right (the longest
# DeepScaleR answer has 145 characters) and can take sympy seconds, which matters where no
# deadline can interrupt it (outside the main thread).
MAX_ANSWER_CHARS = 400
LAYOUT_HINT = (
    "provide a verl/OpenRLHF-layout parquet (columns prompt, reward_model.ground_truth, "
    "extra_info.question), e.g. the DeepScaleR subset ../shared/data/deepscaler_10240.parquet"
)


class TaskFileNotFound(ConfigError, FileNotFoundError):
    """A configured parquet file does not exist (catchable as either error type)."""


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
    """Read ``cfg.path`` (and ``cfg.eval_path``) into a train/eval pool.

    Rows with an empty question or answer are skipped; repeated question texts are kept once.
    Without ``eval_path`` a seeded ``eval_fraction`` of the distinct questions is held out;
    with it, training questions whose text is in the eval file are dropped.
    """
    cfg.validate()
    rows = _distinct(_read_rows(cfg.path, cfg, "task.path"))
    rng = random.Random(cfg.seed)
    if cfg.max_rows is not None and cfg.max_rows < len(rows):
        rows = sorted(rng.sample(rows, cfg.max_rows), key=lambda r: r.position)
    if cfg.eval_path is None:
        n_eval = min(max(1, round(cfg.eval_fraction * len(rows))), len(rows) - 1)
        held_out = set(rng.sample(range(len(rows)), n_eval))
        train_rows = [r for i, r in enumerate(rows) if i not in held_out]
        eval_rows = [r for i, r in enumerate(rows) if i in held_out]
        eval_prefix = name
    else:
        eval_rows = _distinct(_read_rows(cfg.eval_path, cfg, "task.eval_path"))
        eval_texts = {r.text for r in eval_rows}
        train_rows = [r for r in rows if r.text not in eval_texts]
        eval_prefix = f"{name}-eval"  # the eval file's indices may repeat the train file's
    return Pool(
        name=name,
        train=_questions(train_rows, name),
        eval=_questions(eval_rows, eval_prefix),
        verifier=MathVerifier(cfg.answer_format, timeout=cfg.verifier_timeout),
    )


def _read_rows(path_str: str, cfg: TaskConfig, field: str) -> list[_Row]:
    import pyarrow.parquet as pq

    path = Path(path_str).expanduser()
    if not path.is_file():
        raise TaskFileNotFound(field, path_str, f"no such file; {LAYOUT_HINT}")
    try:
        schema = pq.read_schema(path)
    except Exception as err:
        raise ConfigError(
            field, path_str, f"not a readable parquet file ({err}); {LAYOUT_HINT}"
        ) from err
    question_path = _resolve(schema, cfg.question_key, "task.question_key", path_str)
    answer_path = _resolve(schema, cfg.answer_key, "task.answer_key", path_str)
    index_path = _try_resolve(schema, INDEX_KEY)
    wanted = [question_path, answer_path] + ([index_path] if index_path else [])
    table = pq.read_table(path, columns=sorted({p[0] for p in wanted}))
    texts = _column_values(table, question_path)
    answers = _column_values(table, answer_path)
    indices = _column_values(table, index_path) if index_path else [None] * table.num_rows
    if index_path and len(set(indices)) != len(indices):
        indices = [None] * table.num_rows  # ids must be unique: fall back to row numbers
    rows = []
    for position, (text, answer, index) in enumerate(zip(texts, answers, indices, strict=True)):
        if text is None or answer is None or not str(text).strip() or not str(answer).strip():
            continue
        rows.append(_Row(position, index, str(text), str(answer).strip()))
    return rows


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


def _questions(rows: list[_Row], prefix: str) -> list[Question]:
    return [
        Question(
            qid=f"{prefix}-{row.position if row.index is None else row.index}",
            text=row.text,
            answer=row.answer,
            meta={"row": row.position, "index": row.index},
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
