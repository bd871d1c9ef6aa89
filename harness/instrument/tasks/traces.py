"""Worked solutions for arithmetic questions: one line per intermediate result, then the answer.

Real RLVR responses work a problem out before they answer; a tiny policy warm-started on bare
answers has nothing to reason through and nothing whose length grows with difficulty. These
traces give it both: ``4 - 1 * 7 + 2`` is solved as

    1*7=7
    4-7=-3
    -3+2=-1
    Answer: -1

(products first, then sums left to right: the order of operations). A warm start may teach some
steps with a *slip*: a result off by one, carried consistently into the later steps and the
answer. A slip is chosen by a hash of (question id, step), so the policy cannot tell which
questions slip and learns a per-step habit: a latent skill it has but does not reliably use,
which is what GRPO draws out (DESIGN-NOTES section 6). Longer problems have more steps to slip
on, so the base pass rate falls with difficulty and the response grows with it.

Traces are computed from reasoning-gym's own ``metadata.expression``; the answer they end in is
checked against reasoning-gym's answer, so a trace can never teach a wrong reference.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.instrument.tasks.extract import ANSWER_MARKER

# datasets whose metadata carries a plain + - * expression of integers
TRACE_DATASETS = ("chain_sum", "basic_arithmetic")
_TOKEN = re.compile(r"\s*(\d+|[-+*])")


@dataclass(frozen=True)
class Step:
    """One line of a trace: ``left op right = value``."""

    left: int
    op: str
    right: int
    value: int

    def render(self) -> str:
        return f"{self.left}{self.op}{self.right}={self.value}"


def parse_expression(expression: str) -> list[int | str]:
    """``'4 - 1 * 7'`` -> ``[4, '-', 1, '*', 7]``; a leading sign or two operators in a row is
    an error (reasoning-gym's tiers here are generated without negation)."""
    tokens: list[int | str] = []
    pos = 0
    text = expression.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot trace expression {expression!r} (at {text[pos:]!r})")
        tok = m.group(1)
        tokens.append(int(tok) if tok.isdigit() else tok)
        pos = m.end()
    ok = len(tokens) % 2 == 1 and all(
        isinstance(t, int) if i % 2 == 0 else t in "+-*" for i, t in enumerate(tokens))
    if not ok:
        raise ValueError(f"cannot trace expression {expression!r}: expected number (op number)*")
    return tokens


def _apply(left: int, op: str, right: int) -> int:
    return left * right if op == "*" else left + right if op == "+" else left - right


def solve(expression: str, slip: Sequence[int] = ()) -> list[Step]:
    """The steps of ``expression``: products left to right, then sums left to right.

    ``slip[k]`` (default 0) is added to the result of step ``k``; later steps use the slipped
    value, as a student who made the slip would.
    """
    tokens = parse_expression(expression)
    steps: list[Step] = []

    def emit(left: int, op: str, right: int) -> int:
        k = len(steps)
        value = _apply(left, op, right) + (slip[k] if k < len(slip) else 0)
        steps.append(Step(left, op, right, value))
        return value

    # products first: collapse each run of a*b*c into one term
    terms: list[int] = [tokens[0]]  # type: ignore[list-item]
    ops: list[str] = []
    for i in range(1, len(tokens), 2):
        op, num = tokens[i], tokens[i + 1]
        assert isinstance(op, str) and isinstance(num, int)
        if op == "*":
            terms[-1] = emit(terms[-1], "*", num)
        else:
            ops.append(op)
            terms.append(num)
    value = terms[0]
    for op, num in zip(ops, terms[1:], strict=True):
        value = emit(value, op, num)
    return steps


def n_steps(expression: str) -> int:
    """Number of trace lines of ``expression`` (its operator count)."""
    return len(parse_expression(expression)) // 2


def render(steps: Sequence[Step], answer: int | str) -> str:
    """The trace text: one line per step, then ``Answer: <answer>``. A one-number expression
    (no steps) is just the answer line."""
    lines = [s.render() for s in steps] + [f"{ANSWER_MARKER} {answer}"]
    return "\n".join(lines)


def _unit(key: str) -> float:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def slips_for(qid: str, steps: int, rate: float) -> list[int]:
    """Per-step slips (0, +1 or -1) of question ``qid`` at ``rate`` per step; a pure function of
    its arguments, so every build teaches the same slips."""
    out = []
    for k in range(steps):
        if rate > 0 and _unit(f"slip/{qid}/{k}") < rate:
            out.append(1 if _unit(f"slip-sign/{qid}/{k}") < 0.5 else -1)
        else:
            out.append(0)
    return out


def worked_solution(expression: str, answer: str, qid: str = "", slip_rate: float = 0.0) -> str:
    """The trace of ``expression`` ending in its answer; with ``slip_rate`` > 0, some steps slip
    (chosen by ``qid``) and the answer line follows the slipped trace.

    Raises ValueError when the slip-free trace does not reach ``answer`` (a question this module
    cannot trace faithfully must not be taught).
    """
    clean = solve(expression)
    final = clean[-1].value if clean else int(parse_expression(expression)[0])
    if str(final) != str(answer).strip():
        raise ValueError(f"trace of {expression!r} ends in {final}, the reference says {answer!r}")
    if slip_rate <= 0 or not clean:
        return render(clean, final)
    slipped = solve(expression, slips_for(qid, len(clean), slip_rate))
    return render(slipped, slipped[-1].value)
