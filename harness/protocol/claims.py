"""Published speed claims beside their measured counterparts on the suite. Torch-free.

``configs/claims.yaml`` lists each method's headline claim (method, baseline, metric, claimed
range, setting, source). For each, the report measures the same comparison on the records:
the aggregate speedup of the claim's strategy over the claim's baseline (IQM across pairs, or
the pair's own speedup with one pair; ``harness.protocol.crosspair.aggregate``) on the ranking clock and
the held rule, with its interval, and gives a verdict on the claimed *direction*:

- **holds**: the whole interval is above 1 (faster than the baseline, as claimed);
- **refuted**: the whole interval is below 1 (slower);
- **inconclusive**: the interval spans 1;
- **not run**: the records lack the strategy or the baseline; **no speed claim**: the paper
  states none (the measurement is still shown);
- **not tested**: the claim says ``needs_revisits`` (the method acts only on prompts trained on
  before) and no run of the strategy selected any prompt twice (``max_repeat_frac`` 0 in every
  run): there the method was its fallback sampler, and its interval measures nothing of it.

The claimed *size* is compared apart (``magnitude``): a claim of 2-6x met by [1.1, 1.3] holds in
direction and is smaller than claimed. The suite's tiny models and pairs are not the papers'
settings: a verdict says what happens here, not whether the paper is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness.runs.paths import CONFIG_DIR, PROJECT_ROOT

CLAIMS_FILE = "claims.yaml"
COLUMNS = ["method", "strategy", "label", "baseline", "suite_baseline", "metric", "claim",
           "claimed_low", "claimed_high", "setting", "source", "checked", "pairs", "measured",
           "measured_lo", "measured_hi", "verdict", "magnitude", "note"]


def default_path() -> Path:
    own = CONFIG_DIR / CLAIMS_FILE
    return own if own.is_file() else PROJECT_ROOT / "configs" / CLAIMS_FILE


def load(path: Path | None = None) -> list[dict[str, Any]]:
    path = Path(path) if path else default_path()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"unreadable claims file {path}: {err}") from err
    claims = (data or {}).get("claims")
    if not isinstance(claims, list):
        raise ValueError(f"{path}: expected a top-level `claims:` list")
    for i, c in enumerate(claims):
        missing = [k for k in ("method", "strategy", "suite_baseline", "source") if not c.get(k)]
        if missing:
            raise ValueError(f"{path}: claim {i + 1} ({c.get('method', '?')}) lacks {missing}")
    return claims


def verdict(lo: float, hi: float) -> str:
    """The claimed direction (faster: speedup > 1) against a measured interval."""
    if math.isnan(lo) or math.isnan(hi):
        return "not run"
    if lo > 1.0:
        return "holds"
    if hi < 1.0:
        return "refuted"
    return "inconclusive"


def magnitude(lo: float, hi: float, low: float | None, high: float | None) -> str:
    """The measured interval against the claimed range (open ends: ``None``)."""
    if math.isnan(lo) or math.isnan(hi) or (low is None and high is None):
        return ""
    if low is not None and hi < low:
        return "smaller than claimed"
    if high is not None and lo > high:
        return "larger than claimed"
    return "consistent with the claimed size"


def _labels(runs: pd.DataFrame, strategy: str) -> list[str]:
    return sorted(lb for lb in set(runs["label"])
                  if lb == strategy or lb.startswith(strategy + "@"))


def not_tested(method: str = "the method") -> str:
    return ("no run selected any prompt twice (select/repeat_frac 0 at every step): "
            f"{method} acts only on prompts trained on before, so here it sampled as its "
            "fallback does and the interval measures nothing of it")


def never_revisited(summaries: pd.DataFrame | None, label: str) -> bool:
    """Whether every finished run of ``label`` recorded, at every step, no prompt trained on
    before (False when the records predate the metric or hold no run of it)."""
    if summaries is None or "max_repeat_frac" not in summaries:
        return False
    mine = summaries.loc[summaries["label"] == label, "max_repeat_frac"]
    return bool(len(mine)) and not mine.isna().any() and bool((mine == 0).all())


def table(runs: pd.DataFrame, claims: list[dict[str, Any]], column: str, reps: int = 2000,
          seed: int = 0, level: float = 0.95, summaries: pd.DataFrame | None = None
          ) -> pd.DataFrame:
    """One row per claim and matching label (one "not run" row when none matches).
    ``summaries`` (one row per run, with ``max_repeat_frac``) decides ``needs_revisits``."""
    from harness.protocol import crosspair

    rows = []
    for c in claims:
        claimed = c.get("claimed") or {}
        low, high = claimed.get("low"), claimed.get("high")
        base = {"method": c["method"], "strategy": c["strategy"], "label": "",
                "baseline": c.get("baseline", ""), "suite_baseline": c["suite_baseline"],
                "metric": c.get("metric") or "", "claim": " ".join(str(c.get("claim", "")).split()),
                "claimed_low": math.nan if low is None else float(low),
                "claimed_high": math.nan if high is None else float(high),
                "setting": " ".join(str(c.get("setting", "")).split()), "source": c["source"],
                "checked": bool(c.get("checked", False)), "pairs": 0, "measured": math.nan,
                "measured_lo": math.nan, "measured_hi": math.nan, "verdict": "not run",
                "magnitude": "", "note": " ".join(str(c.get("note", "")).split())}
        labels = _labels(runs, c["strategy"])
        has_base = (runs["label"] == c["suite_baseline"]).any()
        if not labels or not has_base:
            missing = [x for x, ok in ((c["strategy"], labels), (c["suite_baseline"], has_base))
                       if not ok]
            rows.append({**base, "note": "; ".join(filter(None, [
                base["note"], "no runs of " + " and ".join(missing) + " in the records"]))})
            continue
        for label in labels:
            sub = runs[runs["label"].isin([label, c["suite_baseline"]])]
            agg = crosspair.aggregate(crosspair.score_matrices(sub, c["suite_baseline"], column),
                                      reps=reps, seed=seed, level=level)
            mine = agg[agg["label"] == label]
            row = {**base, "label": label}
            if mine.empty:
                row["note"] = "; ".join(filter(None, [base["note"], "no pair with a "
                                                      f"{c['suite_baseline']} reference time"]))
            else:
                r = mine.iloc[0]
                row.update(pairs=int(r["pairs"]), measured=float(r["iqm_speedup"]),
                           measured_lo=float(r["iqm_lo"]), measured_hi=float(r["iqm_hi"]))
                row["verdict"] = (verdict(row["measured_lo"], row["measured_hi"])
                                  if claimed else "no speed claim")
                row["magnitude"] = magnitude(row["measured_lo"], row["measured_hi"], low, high)
                if c.get("needs_revisits") and never_revisited(summaries, label):
                    row.update(verdict="not tested", magnitude="",
                               note="; ".join(filter(None, [base["note"], not_tested()])))
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _claimed(low: float, high: float) -> str:
    if math.isnan(low) and math.isnan(high):
        return "none"
    if math.isnan(low):
        return f"up to {high:.2f}x"
    if math.isnan(high):
        return f"at least {low:.2f}x"
    return f"{low:.2f}x-{high:.2f}x"


def markdown(frame: pd.DataFrame, clock: str) -> str:
    from harness.protocol.reporttables import _ci, _md_table

    rows = [[r["method"], r["baseline"] + (f" (suite: {r['suite_baseline']})"
                                           if r["suite_baseline"] != r["strategy"] else ""),
             _claimed(r["claimed_low"], r["claimed_high"]), r["claim"],
             r["source"] + ("" if r["checked"] else " (unchecked)"), r["label"] or "-",
             _ci(r["measured"], r["measured_lo"], r["measured_hi"])
             + (f" ({r['pairs']} pair{'s' if r['pairs'] != 1 else ''})" if r["pairs"] else ""),
             f"**{r['verdict']}**", r["magnitude"], r["note"]]
            for _, r in frame.iterrows()]
    return ("Each method's published headline claim beside the same comparison measured here: "
            f"speedup to the held target on the {clock}, aggregated across pairs (IQM; one "
            "pair: its own speedup), with its interval. Verdict on the claimed direction: holds "
            "(interval above 1), refuted (below 1), inconclusive (spans 1); not tested: the "
            "method's mechanism had nothing to act on in these runs (see the note). The "
            "suite's models and tasks are not the papers' settings.\n\n"
            + _md_table(["method", "baseline", "claimed speedup", "claim", "source",
                         "measured label", "measured speedup [CI]", "verdict", "size",
                         "note"], rows))
