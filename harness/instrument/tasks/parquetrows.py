"""The rows of a task table: keys looked up in its schema, cells read as texts, bad rows reported.

Keys are dotted paths (``extra_info.question``): a column, then struct fields
(:func:`_resolve`). A question cell is text unless null, NaN or empty (:func:`_text`); an answer
cell is read per ``reference_format`` (:func:`_reference`). Rows without a question or answer,
and repeated question texts whose answers differ, are a one-line :class:`TaskDataError` or, when
dropping is allowed and they are few, dropped with a count on stderr (:class:`_BadRows`).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config.base import ConfigError
from harness.instrument.tasks.base import TaskDataError
from harness.instrument.tasks.extract import last_boxed

if TYPE_CHECKING:
    # a type only: parquet.py imports the helpers here
    from harness.instrument.tasks.parquet import _AnswerChecker

_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+")
# Cells that read like a missing value once turned into text (pandas NaN/NA/NaT, Python None,
# JSON null): never an answer, and "nan" would match a completion "nan".
MISSING_TEXTS = frozenset({"nan", "-nan", "none", "null", "<na>", "nat"})
# Rows without an answer (or question) are dropped, with a printed count, only while they are at
# most this share of a file's rows; more suggests a wrong answer_key or reference_format.
MAX_DROP_SHARE = 0.5
_SHOWN_ROWS = 3


@dataclass(frozen=True)
class _Row:
    position: int  # row number in the file
    index: Any  # extra_info.index when present
    text: str
    answer: str


class _BadRows:
    """Reports a file's bad rows: a one-line error, or (dropping allowed) a line on stderr."""

    def __init__(self, field_name: str, path: str, total: int, drop: bool, scope: str) -> None:
        self.field_name, self.path, self.total, self.drop = field_name, path, total, drop
        self.scope = scope  # "of its {} rows", or which rows of them a where filter keeps

    def missing(self, positions: list[int], what: str, fix: str, share_of: int | None = None
                ) -> None:
        """Rows (file positions) that lack a question or an answer, out of ``share_of``."""
        if not positions:
            return
        of = self.total if share_of is None else share_of
        n, where = len(positions), _rows_text(positions)
        rows = self.scope.format(of)
        if n == of:
            raise TaskDataError(self.field_name, self.path, f"all {rows} have {what}; {fix}")
        if not self.drop:
            raise TaskDataError(
                self.field_name, self.path,
                f"{n} {rows} have {what}, at {where}; fill them in or delete those rows, or set "
                "task.drop_bad_rows: true to drop them",
            )
        if n > MAX_DROP_SHARE * of:
            raise TaskDataError(
                self.field_name, self.path,
                f"{n} {rows} have {what}, at {where}: too many to drop (more than "
                f"{MAX_DROP_SHARE:.0%}); {fix}, or fill in the missing values",
            )
        self.warn(f"dropped {n} {rows} with {what}, at {where}; set task.drop_bad_rows: false "
                  "to make this an error")

    def conflicts(self, later: list[tuple[_Row, _Row]]) -> None:
        """Repeated question texts whose answers differ: (first row, later row) pairs."""
        if not later:
            return
        n_texts = len({first.text for first, _ in later})
        first, again = later[0]
        example = (f"e.g. row {again.position} {_short(again.text)} answers {_short(again.answer)}"
                   f" but row {first.position} answers {_short(first.answer)}")
        what = (f"{n_texts} question text{'s' if n_texts > 1 else ''} "
                f"{self.scope.format(self.total)} repeat{'' if n_texts > 1 else 's'} with a "
                f"different answer ({len(later)} later row{'s' if len(later) > 1 else ''}; "
                f"{example})")
        if not self.drop:
            raise TaskDataError(
                self.field_name, self.path,
                f"{what}; remove the wrong copies, or set task.drop_bad_rows: true to keep the "
                "first answer of each",
            )
        self.warn(f"{what}: kept the first answer of each and dropped the later rows; fix the "
                  "file, or set task.drop_bad_rows: false to make this an error")

    def warn(self, message: str) -> None:
        print(f"selbench: warning: {self.field_name} = {self.path!r}: {message}", file=sys.stderr)


def _distinct(rows: list[_Row], bad: _BadRows, checker: _AnswerChecker) -> list[_Row]:
    """First occurrence of each question text (DeepScaleR repeats about 1% of them); later
    copies whose answer differs (not even equivalent for math-verify) are reported."""
    first: dict[str, _Row] = {}
    kept = []
    differing: list[tuple[_Row, _Row]] = []
    for row in rows:
        seen = first.get(row.text)
        if seen is None:
            first[row.text] = row
            kept.append(row)
        elif _normal(seen.answer) != _normal(row.answer):
            differing.append((seen, row))
    bad.conflicts([(a, b) for a, b in differing if not checker.same(a.answer, b.answer)])
    return kept


def _normal(answer: str) -> str:
    text = re.sub(r"\\[dt]frac", r"\\frac", answer)
    text = re.sub(r"\\left|\\right|\s+", "", text)
    return text.strip("$")


def _rows_text(positions: list[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:_SHOWN_ROWS])
    more = ", ..." if len(positions) > _SHOWN_ROWS else ""
    return f"row{'s' if len(positions) > 1 else ''} {shown}{more}, counting from 0"


def _short(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_TEXTS


def _text(value: Any) -> str | None:
    """A question cell as text, or None when it is null, NaN or empty."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    text = str(value)
    return None if not text.strip() or _is_missing(text) else text


def _reference(value: Any, fmt: str) -> str | None:
    """The reference answer in a cell: lists joined, $...$ unwrapped, then read per ``fmt``;
    None when there is none (null, NaN, empty, or a text such as "nan" or "None")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, list | tuple):
        parts = [_reference(v, "plain") for v in value]
        value = ", ".join(p for p in parts if p is not None)
    text = str(value).strip()
    if fmt == "boxed":
        text = last_boxed(text) or ""
    elif fmt == "after_hashes":
        text = text.rsplit("####", 1)[-1].strip() if "####" in text else ""
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return None if not text or _is_missing(text) else text


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
