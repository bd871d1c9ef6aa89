"""The README's generated tables: the leaderboard (from the committed report in
``results/leaderboard/report/``) and performance (from the benchmark tables in ``results/bench/``).

Each performance row is a headline number of one committed table (the table says how it was
measured and the command that regenerates it), beside its target. ``python
scripts/readme_tables.py`` rewrites the blocks between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` in README.md; ``--check`` exits 1 when a block is not what the committed
files give (a test runs it), so the README cannot drift from the records.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "results" / "bench"
LEADERBOARD = ROOT / "results" / "leaderboard"
SENSITIVITY = "report-rise90"  # under LEADERBOARD: targets at 90% of uniform's median rise
sys.path.insert(0, str(ROOT))  # harness, for the sweep file and the suite's frozen commit


def rows_of(path: Path) -> list[dict[str, str]]:
    """The first markdown table of ``path`` as dicts keyed by its header."""
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        raise SystemExit(f"{path}: no markdown table (regenerate it: see the file's first lines)")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=False))
            for ln in lines[2:]]


def _num(text: str) -> float:
    return float(re.sub(r"[^0-9.eE+-]", "", text))


def _ci(value: str, lo: str, hi: str) -> str:
    return f"{float(value):.2f} [{float(lo):.2f}, {float(hi):.2f}]"


def leaderboard(results: Path = LEADERBOARD) -> str:
    from harness.protocol import sweep

    spec = sweep.load_spec(ROOT / "configs" / "sweeps" / "leaderboard.yaml")
    planned = len(spec.pairs) * len(spec.strategies) * len(spec.seeds)
    report = results / "report"
    # the runs the report was made from (not the folder's: a sweep running beside it finishes
    # runs that the committed report, and so this block, does not cover yet)
    from harness.protocol.reportrecords import OFF_CLOCK_SUFFIX

    with (report / "runs.csv").open() as fh:  # an oracle run's off-clock twin is the same run
        finished = len({r["run_id"] for r in csv.DictReader(fh)
                        if not r["run_id"].endswith(OFF_CLOCK_SUFFIX.strip())})
    with (report / "leaderboard.csv").open() as fh:
        board = list(csv.DictReader(fh))
    with (report / "pairs.csv").open() as fh:
        pairs = list(csv.DictReader(fh))
    from harness.instrument.suite import load_suite

    frozen = (load_suite(config_dir=ROOT / "configs").frozen_commit or "not frozen")[:7]
    commits = sorted({c for row in board for c in row["git_commits"].split(";") if c})
    out = [f"**{finished} of {planned} runs finished**, on the suite frozen at `{frozen}`, by "
           f"commits {', '.join(f'`{c}`' for c in commits)}. Speedup over uniform to the held "
           "target on the cost clock, IQM across the pairs a strategy has run on, 95% interval "
           "(`results/leaderboard/report/leaderboard.md`):",
           "", "| rank | strategy | pairs | runs reaching target | speedup [95% CI] | "
           "P(improve) [95% CI] |", "|---|---|---|---|---|---|"]
    for row in board:
        label = row["label"]
        mine = [p for p in pairs if p["label"] == label]
        reached = sum(int(p["reached"]) for p in mine)
        seeds = sum(int(p["seeds"]) for p in mine)
        if row["reference"] == "True":
            out.append(f"| ref | {label} | {len(mine)} | {reached}/{seeds} | 1.00 | - |")
            continue
        out.append(f"| {row['rank']} | {label} | {len(mine)} | {reached}/{seeds} | "
                   f"{_ci(row['iqm_speedup'], row['iqm_lo'], row['iqm_hi'])} | "
                   f"{_ci(row['poi'], row['poi_lo'], row['poi_hi'])} |")
    recheck = results / "recheck.json"
    if recheck.is_file():
        import json

        runs = json.loads(recheck.read_text())["runs"]
        same = [r for r in runs if r["identical"]]
        differ = [r for r in runs if not r["identical"]]
        off = ", ".join(f"`{r['commit']}`" for r in differ)
        sizes = [r["worst_rel"] for r in differ if "worst_rel" in r]
        size = (f" by at most {max(sizes):.0e} (relative)" if len(sizes) == len(differ)
                else " (sizes in the table)")
        out += ["", f"Do the commits compute the same? `selbench recheck` replayed the first "
                f"{max(r['steps'] for r in runs)} steps of one run per commit: {len(same)} of "
                f"{len(runs)} bit for bit" + (f"; those of {off} differ{size}" if off else "")
                + " ([`recheck.md`](results/leaderboard/recheck.md))."]
    # the reading, generated with the numbers so that it cannot go stale as runs land
    untested = sorted({r["label"] for r in _claim_rows(report) if r["verdict"] == "not tested"})
    out += ["", "Interval " + _reading(board, untested)
            + (f" Not tested here: {', '.join(untested)} (its mechanism had nothing to act on: "
               "see the claims table's note)." if untested else "")]
    side = results / SENSITIVITY
    if (side / "leaderboard.csv").is_file():
        with (side / "leaderboard.csv").open() as fh:
            other = list(csv.DictReader(fh))
        out += ["", "Sensitivity: at the target above, about half of uniform's seeds end below "
                "it, so resampled medians of uniform often never arrive and every interval is "
                "open above: no strategy that arrives can be shown slower. The same records "
                "against a target of uniform's median step-0 accuracy plus 90% of its median "
                f"rise ([`{SENSITIVITY}/`](results/leaderboard/{SENSITIVITY}/leaderboard.md); "
                "a check added after the rule above gave these open intervals; the ranking "
                "stays on that rule): "
                "interval " + _reading(other, untested)]
    return "\n".join(out)


def _reading(board: list[dict[str, str]], untested: list[str]) -> str:
    """Which strategies' intervals lie above 1, below 1 or across it."""
    measured = [r for r in board if r["reference"] != "True" and r["label"] not in untested]
    above = [r["label"] for r in measured if float(r["iqm_lo"]) > 1]
    below = [r["label"] for r in measured if float(r["iqm_hi"]) < 1]
    span = [r["label"] for r in measured if r["label"] not in above + below]
    return ("above 1 (faster than uniform): " + (", ".join(above) or "none")
            + "; below 1 (slower): " + (", ".join(below) or "none") + "; spanning 1 (not told "
            "apart yet): " + (", ".join(span) or "none") + ".")


def _claim_rows(report: Path) -> list[dict[str, str]]:
    with (report / "claims.csv").open() as fh:
        return list(csv.DictReader(fh))


def _measured(r: dict[str, str]) -> str:
    return (_ci(r["measured"], r["measured_lo"], r["measured_hi"]) if r["measured"]
            else "not run yet")


def claims(results: Path = LEADERBOARD) -> str:
    rows = _claim_rows(results / "report")
    # the sensitivity check (scripts/leaderboard_snapshot.sh writes it beside the report)
    side = results / SENSITIVITY
    other = {(r["method"], r["suite_baseline"]): r for r in _claim_rows(side)} if (
        side / "claims.csv").is_file() else {}
    extra = " at 90% of the rise [95% CI] | verdict there |" if other else ""
    out = ["| method | against (here) | claimed speedup | measured [95% CI] | verdict |" + extra,
           "|---|---|---|---|---|" + ("---|---|" if other else "")]
    for r in rows:
        lo, hi = r["claimed_low"], r["claimed_high"]
        claimed = (f"{float(lo):.2f}x-{float(hi):.2f}x" if lo and hi else
                   f"up to {float(hi):.2f}x" if hi else f"at least {float(lo):.2f}x" if lo
                   else "no speed claim")
        line = (f"| {r['method']} | {r['suite_baseline']} | {claimed} | {_measured(r)} | "
                f"{r['verdict']} |")
        if other:
            o = other.get((r["method"], r["suite_baseline"]))
            line += f" {_measured(o)} | {o['verdict']} |" if o else " - | - |"
        out.append(line)
    return "\n".join(out)


def performance(bench: Path = BENCH) -> str:
    out = ["| measure | measured | target | table |", "|---|---|---|---|"]
    steps = [r for r in rows_of(bench / "step.md") if r["phase"] == "whole step"]
    out.append("| uniform step (" + ", ".join(r["pair"] for r in steps) + ") | "
               + ", ".join(f"{_num(r['measured s']):.2f} s = {r['measured / floor']}" for r in steps)
               + " its useful-work floor | <= 2x | [step.md](results/bench/step.md) |")
    trl = rows_of(bench / "trl_vs_selbench.md")
    out.append("| one GRPO step, ours / TRL's GRPOTrainer (" + ", ".join(r["size"] for r in trl)
               + ") | " + ", ".join(f"{1 / _num(r['ratio TRL step / ours']):.2f}x" for r in trl)
               + " | <= 0.5x | [trl_vs_selbench.md](results/bench/trl_vs_selbench.md) |")
    rounds: dict[str, float] = {}
    for r in rows_of(bench / "scoring.md"):
        if r["what"] == "round":
            rounds[r["questions"]] = min(rounds.get(r["questions"], float("inf")), _num(r["median s"]))
    out.append("| DOTS selection round (" + ", ".join(f"{n} questions" for n in rounds) + ") | "
               + ", ".join(f"{s:.3f} s" for s in rounds.values())
               + " | <= 0.05 s (10,000) | [scoring.md](results/bench/scoring.md) |")
    cli = {r["command"].split(":")[0]: r for r in rows_of(bench / "cli.md")}
    worst = max(_num(r["median s"]) for k, r in cli.items() if "cold" not in k)
    out.append(f"| `selbench list pairs`; slowest config error | "
               f"{_num(cli['list pairs']['median s']):.2f} s; {worst:.2f} s | < 0.5 s | "
               "[cli.md](results/bench/cli.md) |")
    engines = bench / "engines.md"
    if engines.is_file():
        vllm = [r for r in rows_of(engines) if r.get("engine") == "vllm"]
        out.append("| generation tokens/s, vLLM / ours (" + ", ".join(r["pair"] for r in vllm)
                   + ") | " + ", ".join(f"{r['vllm / hf']}x" for r in vllm)
                   + " | - | [engines.md](results/bench/engines.md) |")
    compiled = bench / "compile.md"
    if compiled.is_file():
        rows = rows_of(compiled)
        pairs = ", ".join(dict.fromkeys(r["pair"] for r in rows))
        caches = "; ".join(dict.fromkeys(r["inductor cache"] for r in rows))
        out.append(f"| torch.compile (`SELBENCH_COMPILE=1`, {pairs}): step, and 150-step run "
                   f"with its compile, over eager (inductor cache {caches}) | "
                   + "; ".join(f"{r['compiled / eager']}, {r['150-step run, compiled / eager']}"
                               for r in rows)
                   + " | run < 1x, else off | [compile.md](results/bench/compile.md) |")
    return "\n".join(out)


SECTIONS = {"leaderboard": leaderboard, "claims": claims, "performance": performance}


def rewrite(readme: str, name: str, block: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md: add the markers {start} and {end} where the table goes")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = ap.parse_args(argv)
    path = ROOT / "README.md"
    readme = new = path.read_text()
    for name, make in SECTIONS.items():
        new = rewrite(new, name, make())
    if args.check:
        if new != readme:
            print("README.md's generated tables are out of date: python scripts/readme_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
