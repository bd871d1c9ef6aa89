"""Measure the CPU suite and print the README table.

For every pair: the base policy's pass-rate spread on 512 pool questions (G = 8), and, when a
finished uniform run of that pair is found under RESULTS, its held-out accuracy at step 0 and
at the end and its on-the-clock time. Usage:

    python scripts/suite_table.py RESULTS [--skip-probe PAIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import config
from harness.instrument.probe import probe


def _uniform_run(results: Path, pair: str) -> dict | None:
    for summary in sorted(results.glob(f"runs/{pair}__uniform__*/summary.json")):
        return json.loads(summary.read_text())
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--skip-probe", nargs="*", default=[])
    ap.add_argument("--questions", type=int, default=512)
    args = ap.parse_args()
    print("| pair | model | mean pass rate | never solved | always solved | uniform 60 steps: "
          "accuracy start -> end | on-clock time |")
    print("|---|---|---|---|---|---|---|")
    for pair in config.list_names("pairs"):
        cfg = config.resolve(pair, "uniform", seed=0)
        if cfg.model.kind == "hf":
            continue  # the paper's GPU pairs are not part of the CPU suite
        cells = ["-", "-", "-"]
        if pair not in args.skip_probe:
            row = probe(cfg, max_questions=args.questions, progress=False)
            cells = [f"{row['mean_pass_rate']:.2f}", f"{row['never_solved']:.0%}",
                     f"{row['always_solved']:.0%}"]
        run = _uniform_run(args.results, pair)
        acc = (f"{run['initial_accuracy']:.3f} -> {run['final_accuracy']:.3f}" if run else "-")
        clock = f"{run['clock_s'] / 60:.1f} min" if run else "-"
        print(f"| {pair} | {cfg.model.name} | {' | '.join(cells)} | {acc} | {clock} |", flush=True)


if __name__ == "__main__":
    main()
