"""Worked solutions: order of operations, slips carried through, the answer line read back."""

from __future__ import annotations

import pytest

from harness.instrument.tasks import traces
from harness.instrument.tasks.extract import extract_answer


def test_products_first_then_sums_left_to_right() -> None:
    steps = traces.solve("4 - 1 * 7 + 2")
    assert [s.render() for s in steps] == ["1*7=7", "4-7=-3", "-3+2=-1"]
    assert traces.render(steps, -1) == "1*7=7\n4-7=-3\n-3+2=-1\nAnswer: -1"


def test_chained_products_collapse_into_one_term() -> None:
    steps = traces.solve("2 * 3 * 4 - 5")
    assert [s.render() for s in steps] == ["2*3=6", "6*4=24", "24-5=19"]


def test_a_slip_is_carried_into_later_steps_and_the_answer() -> None:
    steps = traces.solve("9 - 7 - 7", slip=[1, 0])
    assert [s.render() for s in steps] == ["9-7=3", "3-7=-4"]


def test_worked_solution_checks_the_reference_answer() -> None:
    assert traces.worked_solution("3 + 6 + 1", "10") == "3+6=9\n9+1=10\nAnswer: 10"
    with pytest.raises(ValueError, match="reference says"):
        traces.worked_solution("3 + 6 + 1", "11")


def test_slips_are_a_pure_function_of_question_and_rate() -> None:
    a = [traces.slips_for(f"q{i}", 5, 0.3) for i in range(400)]
    assert a == [traces.slips_for(f"q{i}", 5, 0.3) for i in range(400)]
    flat = [x for row in a for x in row]
    share = sum(x != 0 for x in flat) / len(flat)
    assert 0.25 < share < 0.35  # 2,000 draws at 0.3
    assert {x for x in flat} == {-1, 0, 1}
    assert all(x == 0 for x in traces.slips_for("q0", 5, 0.0))


def test_slipped_solution_is_consistent_and_wrong() -> None:
    qid = next(f"q{i}" for i in range(100) if any(traces.slips_for(f"q{i}", 3, 0.5)))
    text = traces.worked_solution("1 + 2 + 3 + 4", "10", qid, slip_rate=0.5)
    answer = extract_answer(text, "answer_line")
    assert answer != "10"
    # every line is its predecessor's value op the next term, as a student would write it
    lines = text.splitlines()[:-1]
    for prev, line in zip(lines, lines[1:], strict=False):
        assert line.startswith(prev.split("=")[1])


def test_bad_expressions_name_themselves() -> None:
    with pytest.raises(ValueError, match="cannot trace"):
        traces.parse_expression("4 / 2")
    with pytest.raises(ValueError, match="expected number"):
        traces.parse_expression("4 + + 2")


def test_answer_line_needs_the_marker() -> None:
    assert extract_answer("1+2=3\nAnswer: 3", "answer_line") == "3"
    assert extract_answer("1+2=3\nAnswer: -3\nAnswer: 4\n", "answer_line") == "4"
    # cut off before the answer line: no answer, even though the last number is right
    assert extract_answer("1+2=3\n3+4=7", "answer_line") is None
    assert extract_answer("Answer:  ", "answer_line") is None
