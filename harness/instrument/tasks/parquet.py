"""Question pools read from tables, checked with math-verify.

A table is a local parquet/JSONL/JSON file or a Hugging Face dataset name (see
:mod:`harness.instrument.tasks.tables`). The default keys fit the verl/OpenRLHF layout (e.g. the paper's
DeepScaleR subset): ``prompt`` is a chat list, ``reward_model`` a struct with ``ground_truth``,
``extra_info`` a struct with ``question`` and ``index``. Keys are dotted paths
(``extra_info.question``): a column, then struct fields. Reading and checking a table's cells
and rows is :mod:`harness.instrument.tasks.parquetrows`; this module builds the pool.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from harness.instrument.tasks.base import Pool, Question, TaskDataError
from harness.instrument.tasks.config import EvalSetConfig, TaskConfig
from harness.instrument.tasks.extract import extract_answer
from harness.instrument.tasks.parquetrows import (
    _BadRows,
    _column_values,
    _distinct,
    _is_missing,
    _reference,
    _resolve,
    _Row,
    _text,
    _try_resolve,
)
from harness.instrument.tasks.tables import LAYOUT_HINT, TaskFileNotFound, read_table
from harness.instrument.tasks.verifier import Verifier

__all__ = ["LAYOUT_HINT", "MathVerifier", "TaskDataError", "TaskFileNotFound", "load_parquet_pool"]

INDEX_KEY = "extra_info.index"
# Longer predicted answers score 0.0 without parsing: they are never right (the longest
# DeepScaleR answer has 145 characters) and can take sympy seconds, which matters where no
# deadline can interrupt it (outside the main thread).
MAX_ANSWER_CHARS = 400


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
        if answer is None or len(answer) > MAX_ANSWER_CHARS or _is_missing(question.answer):
            return False  # (a gold "nan" or "None" would match a completion that says so)
        from math_verify import parse, verify  # already imported by _warm_up_math_verify

        gold = self._gold.get(question.qid)
        if gold is None:
            gold = parse(_as_boxed(question.answer), parsing_timeout=None)
            self._gold[question.qid] = gold
        predicted = parse(_as_boxed(answer), parsing_timeout=None)
        return bool(predicted) and bool(gold) and verify(gold, predicted, timeout_seconds=None)

    def __getstate__(self) -> dict[str, Any]:
        # Parsed sympy golds are a cache, rebuilt on demand; do not ship them to workers.
        state = super().__getstate__()
        state["_gold"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        _warm_up_math_verify()  # a fresh worker process must not import under a deadline


def load_parquet_pool(cfg: TaskConfig, name: str) -> Pool:
    """Read ``cfg.path`` (and ``cfg.eval_path`` or ``cfg.eval_sets``) into a train/eval pool.

    Every file is checked as it is read (see :func:`_read_rows`): an empty file, rows without a
    question or answer (null, NaN, empty) and repeated question texts whose answers differ are
    one-line :class:`TaskDataError` s naming the file, the rows and the fix, or, with
    ``cfg.drop_bad_rows`` and few such rows, dropped with a printed count. Repeated texts with
    the same answer are kept once. Without ``eval_path`` or ``eval_sets`` a seeded
    ``eval_fraction`` of the distinct questions is held out; with either, training questions
    whose text is held out are dropped.
    """
    cfg.validate()
    verifier = MathVerifier(cfg.answer_format, timeout=cfg.verifier_timeout)
    checker = _AnswerChecker(cfg.verifier_timeout)
    try:
        return _build(cfg, name, verifier, checker)
    finally:
        checker.close()


def _build(cfg: TaskConfig, name: str, verifier: MathVerifier, checker: _AnswerChecker) -> Pool:
    drop = cfg.drop_bad_rows
    rows = _read_rows(cfg, "task", drop, checker)
    rng = random.Random(cfg.seed)
    if cfg.max_rows is not None and cfg.max_rows < len(rows):
        rows = sorted(rng.sample(rows, cfg.max_rows), key=lambda r: r.position)
    eval_sets: dict[str, list[Question]] = {}
    held_out_from = ""
    if cfg.eval_sets:
        for i, es in enumerate(cfg.eval_sets):
            set_rows = _read_rows(es, f"task.eval_sets[{i}]", drop, checker)[: es.max_rows]
            eval_sets[es.name] = _questions(set_rows, f"{name}-{es.name}", eval_set=es.name)
        held_out = {q.text for qs in eval_sets.values() for q in qs}
        train_rows = [r for r in rows if r.text not in held_out]
        evals = [q for qs in eval_sets.values() for q in qs]
        held_out_from = "task.eval_sets"
    elif cfg.eval_path is None:
        if len(rows) < 2:
            raise TaskDataError(
                "task.path", cfg.path,
                f"only {len(rows)} distinct question with an answer is left, but holding out "
                "task.eval_fraction for eval needs at least 2; give the file more rows or set "
                "task.eval_path to a separate eval file",
            )
        n_eval = min(max(1, round(cfg.eval_fraction * len(rows))), len(rows) - 1)
        held = set(rng.sample(range(len(rows)), n_eval))
        train_rows = [r for i, r in enumerate(rows) if i not in held]
        evals = _questions([r for i, r in enumerate(rows) if i in held], name)
    else:
        eval_cfg = EvalSetConfig(name="eval", path=cfg.eval_path, split=cfg.split,
                                 subset=cfg.subset, question_key=cfg.question_key,
                                 answer_key=cfg.answer_key, reference_format=cfg.reference_format)
        eval_rows = _read_rows(eval_cfg, "task.eval_path", drop, checker)
        eval_texts = {r.text for r in eval_rows}
        train_rows = [r for r in rows if r.text not in eval_texts]
        # the eval file's indices may repeat the train file's
        evals = _questions(eval_rows, f"{name}-eval")
        held_out_from = "task.eval_path"
    if not train_rows:
        raise TaskDataError(
            "task.path", cfg.path,
            f"all {len(rows)} of its distinct questions are also in {held_out_from}, so none is "
            f"left to train on; use a training file whose questions differ from {held_out_from}",
        )
    return Pool(
        name=name,
        train=_questions(train_rows, name),
        eval=evals,
        verifier=verifier,
        eval_sets=eval_sets,
        origin=cfg.path,
    )


def _read_rows(cfg: TaskConfig | EvalSetConfig, prefix: str, drop: bool,
               checker: _AnswerChecker) -> list[_Row]:
    """The distinct, checked rows of the table ``cfg`` describes (path, split, subset, keys,
    filters, reference).

    Errors (one line, :class:`TaskDataError` on the path field): an empty table, no row left by
    ``where``, no row with an answer (or question), and, unless ``drop`` (``task.drop_bad_rows``),
    any rows without one or repeated texts whose answers differ. With ``drop`` those rows are
    dropped and counted on stderr: up to
    :data:`~harness.instrument.tasks.parquetrows.MAX_DROP_SHARE` of the rows without an answer,
    and the later copies of a repeated text (its first answer is kept).
    """
    path_field = "task.eval_path" if prefix == "task.eval_path" else f"{prefix}.path"
    key_prefix = "task" if prefix == "task.eval_path" else prefix
    table = read_table(cfg.path, cfg.split, cfg.subset, path_field)
    if table.num_rows == 0:
        raise TaskDataError(path_field, cfg.path, f"the table is empty (0 rows); {LAYOUT_HINT}")
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
    selected = [i for i, k in enumerate(keep) if k]
    if not selected:
        raise TaskDataError(
            f"{key_prefix}.where", cfg.where,
            f"no row of {cfg.path} matches (0 of {table.num_rows} rows); list values that occur "
            "in those columns",
        )
    rows = []
    no_text: list[int] = []
    no_answer: list[int] = []
    for position in selected:
        text = _text(texts[position])
        reference = _reference(answers[position], cfg.reference_format)
        if text is None:
            no_text.append(position)
        elif reference is None:
            no_answer.append(position)
        else:
            rows.append(_Row(position, indices[position], text, reference))
    scope = f"of the {{}} rows {key_prefix}.where keeps" if cfg.where else "of its {} rows"
    bad = _BadRows(path_field, cfg.path, len(selected), drop, scope)
    bad.missing(no_text, f"no question text in {cfg.question_key!r} (null, NaN or empty)",
                f"point {key_prefix}.question_key at the column that holds the questions")
    how = {"plain": "null, NaN or empty", "boxed": "null, or no \\boxed{...} in it",
           "after_hashes": "null, or no '#### answer' in it"}[cfg.reference_format]
    fix = f"point {key_prefix}.answer_key at the column that holds the answers"
    if cfg.reference_format != "plain":
        fix += f" or change {key_prefix}.reference_format"
    bad.missing(no_answer, f"no answer in {cfg.answer_key!r} ({how})", fix,
                share_of=len(selected) - len(no_text))
    return _distinct(rows, bad, checker)


class _AnswerChecker:
    """Whether two reference answers are the same for math-verify (under the verifier's
    deadline, so a pathological reference cannot stall loading in any thread)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._verifier: MathVerifier | None = None

    def same(self, a: str, b: str) -> bool:
        if self._verifier is None:
            self._verifier = MathVerifier("boxed", timeout=self.timeout)
        # (the verifier caches parsed golds by qid: the answer itself is the key here)
        return (self._verifier(Question(qid=a, text="", answer=a), _as_boxed(b)) == 1.0
                and self._verifier(Question(qid=b, text="", answer=b), _as_boxed(a)) == 1.0)

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()


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
