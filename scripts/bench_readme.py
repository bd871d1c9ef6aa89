"""The README's performance section, generated from the benchmark tables in ``results/bench/``.

Each row is a headline number of one committed table (the table says how it was measured and the
command that regenerates it), beside its target. ``python scripts/bench_readme.py`` rewrites the
block between ``<!-- performance:start -->`` and ``<!-- performance:end -->`` in README.md;
``--check`` exits 1 when the README's block is not what the tables give (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "results" / "bench"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"


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


def section(bench: Path = BENCH) -> str:
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
    return "\n".join(out)


def rewrite(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md: add the markers {START} and {END} where the section goes")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = ap.parse_args(argv)
    path = ROOT / "README.md"
    readme = path.read_text()
    new = rewrite(readme, section())
    if args.check:
        if new != readme:
            print("README.md's performance section is out of date: python scripts/bench_readme.py",
                  file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
