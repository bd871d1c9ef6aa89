"""The claims table: verdicts on hand-made intervals, and the shipped claims file."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.protocol import claims

NAN = math.nan


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (1.2, 2.0, "holds"), (0.4, 0.9, "refuted"), (0.8, 1.3, "inconclusive"),
    (1.0, 1.5, "inconclusive"), (0.5, 1.0, "inconclusive"), (NAN, NAN, "not run")])
def test_verdict_on_the_claimed_direction(lo: float, hi: float, expected: str) -> None:
    assert claims.verdict(lo, hi) == expected


@pytest.mark.parametrize(("lo", "hi", "low", "high", "expected"), [
    (1.1, 1.3, 2.0, 6.0, "smaller than claimed"), (2.5, 3.0, 2.0, 6.0,
                                                    "consistent with the claimed size"),
    (7.0, 9.0, 2.0, 6.0, "larger than claimed"), (1.5, 2.5, None, 2.0,
                                                  "consistent with the claimed size"),
    (1.2, 1.5, 1.7, None, "smaller than claimed"), (1.2, 1.5, None, None, "")])
def test_magnitude_against_the_claimed_range(lo: float, hi: float, low: float | None,
                                             high: float | None, expected: str) -> None:
    assert claims.magnitude(lo, hi, low, high) == expected


def test_shipped_claims_file_names_every_method() -> None:
    entries = claims.load()
    methods = {c["method"] for c in entries}
    assert {"DOTS", "DOTS + RR", "SPEED-RL", "GRESO", "MoPPS", "DAPO dynamic sampling",
            "PODS"} <= methods
    for c in entries:
        assert c["source"] and c["suite_baseline"] and "claim" in c
    rr = next(c for c in entries if c["method"] == "DOTS + RR")
    assert rr["claimed"] == {"low": 1.30, "high": 2.61}


def _runs() -> pd.DataFrame:
    rows = []
    for pair in ("A", "B"):
        for label, times in (("uniform", [10.0, 10.0, 10.0]), ("dots+rr@v1", [4.0, 5.0, 4.5]),
                             ("speed", [20.0, 30.0, 25.0])):
            for seed, t in enumerate(times):
                rows.append({"pair": pair, "label": label, "seed": seed,
                             "run_id": f"{pair}{label}{seed}", "time_to_target_s": t})
    return pd.DataFrame(rows)


def test_claims_table_measures_each_claim_against_its_baseline() -> None:
    entries = [
        {"method": "DOTS + RR", "strategy": "dots+rr", "suite_baseline": "uniform",
         "claimed": {"low": 1.3, "high": 2.61}, "source": "s"},
        {"method": "SPEED vs RLOO", "strategy": "speed", "suite_baseline": "uniform",
         "claimed": {"low": 2.0, "high": 6.0}, "source": "s"},
        {"method": "SPEED vs DAPO", "strategy": "speed", "suite_baseline": "dapo",
         "claimed": {"low": 2.0, "high": 6.0}, "source": "s"},
        {"method": "DOTS", "strategy": "dots", "suite_baseline": "uniform", "claimed": None,
         "source": "s"}]
    t = claims.table(_runs(), entries, "time_to_target_s", reps=200).set_index("method")
    assert t.loc["DOTS + RR", "label"] == "dots+rr@v1"  # variants match their strategy
    assert t.loc["DOTS + RR", "verdict"] == "holds" and t.loc["DOTS + RR", "pairs"] == 2
    assert t.loc["SPEED vs RLOO", "verdict"] == "refuted"
    assert t.loc["SPEED vs RLOO", "magnitude"] == "smaller than claimed"
    assert t.loc["SPEED vs DAPO", "verdict"] == "not run"
    assert "no runs of dapo" in t.loc["SPEED vs DAPO", "note"]
    assert t.loc["DOTS", "verdict"] == "not run"  # no dots runs either
    md = claims.markdown(t.reset_index(), "wall clock")
    assert "| DOTS + RR |" in md and "**holds**" in md and "1.30x-2.61x" in md


def test_a_method_that_acts_on_revisits_is_not_tested_where_nothing_was_revisited() -> None:
    runs = _runs()
    entry = {"method": "SPEED", "strategy": "speed", "suite_baseline": "uniform",
             "claimed": {"low": 2.0, "high": 6.0}, "source": "s", "needs_revisits": True}

    def summaries(repeat: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"label": ["speed"] * len(repeat) + ["uniform"],
                             "max_repeat_frac": [*repeat, 0.0]})

    never = claims.table(runs, [entry], "time_to_target_s", reps=100,
                         summaries=summaries([0.0] * 6)).iloc[0]
    assert never["verdict"] == "not tested" and "selected any prompt twice" in never["note"]
    assert never["measured"] == pytest.approx(0.4)  # the measurement is still shown
    # one run that revisited a prompt, or records without the metric: the verdict stands
    for repeat in ([0.0] * 5 + [0.1], [0.0] * 5 + [NAN]):
        row = claims.table(runs, [entry], "time_to_target_s", reps=100,
                           summaries=summaries(repeat)).iloc[0]
        assert row["verdict"] == "refuted"
    assert claims.table(runs, [{**entry, "needs_revisits": False}], "time_to_target_s",
                        reps=100, summaries=summaries([0.0] * 6)).iloc[0]["verdict"] == "refuted"
