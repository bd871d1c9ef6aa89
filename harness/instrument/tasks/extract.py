"""Read the answer out of a completion, in one of the formats a task config names."""

from __future__ import annotations

import re

BOXED = "\\boxed"
ANSWER_MARKER = "Answer:"  # the last line of a worked solution (harness.instrument.tasks.traces)
# An integer, decimal or fraction, optionally with thousands separators. A minus sign counts
# only when it is not a binary operator ("5-3" ends in 3, not -3).
_NUMBER = re.compile(r"(?:(?<![\w).])-)?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


def extract_answer(completion: str, fmt: str) -> str | None:
    """The answer string in ``completion`` under format ``fmt``, or None if there is none.

    - ``first_line``: the text up to the first newline, stripped (tiny models answer " 42\\n").
    - ``boxed``: the content of the last ``\\boxed{...}`` whose braces balance.
    - ``last_number``: the last integer, decimal or fraction, thousands separators removed.
    - ``answer_line``: the rest of the line after the last ``Answer:`` (worked solutions end
      in one; a response cut off before it has no answer, whatever numbers it worked out).
    """
    if fmt == "first_line":
        return _non_empty(completion.split("\n", 1)[0])
    if fmt == "boxed":
        return last_boxed(completion)
    if fmt == "last_number":
        return last_number(completion)
    if fmt == "answer_line":
        at = completion.rfind(ANSWER_MARKER)
        if at == -1:
            return None
        return _non_empty(completion[at + len(ANSWER_MARKER):].split("\n", 1)[0])
    raise ValueError(
        f"unknown answer format {fmt!r}; use first_line, boxed, last_number or answer_line")


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}``; a truncated last box falls back to earlier."""
    start = text.rfind(BOXED)
    while start != -1:
        content = _braced_after(text, start + len(BOXED))
        if content is not None:
            return _non_empty(content)
        start = text.rfind(BOXED, 0, start)
    return None


def last_number(text: str) -> str | None:
    """The last number in ``text`` ("1,000" gives "1000"), or None."""
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else None


def _braced_after(text: str, pos: int) -> str | None:
    """The balanced ``{...}`` group starting at ``pos`` (spaces allowed before it), or None."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text) or text[pos] != "{":
        return None
    depth = 0
    for i in range(pos, len(text)):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i]
    return None


def _non_empty(text: str) -> str | None:
    text = text.strip()
    return text or None
