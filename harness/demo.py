"""``selbench demo``: the CPU demo on one pair, ending in a figure and a table.

For now it runs the uniform GRPO baseline on the demo pair (building its tiny model first if
needed) and plots held-out accuracy against on-the-clock wall time; the strategy comparison
joins it as the methods land. A rerun finds finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import config, trainer

DEMO_PAIR = "tiny-b-chainsum"
DEMO_STRATEGIES = ("uniform",)
DEMO_SEEDS = (0,)


def main(results: Path, quick: bool = False) -> None:
    results.mkdir(parents=True, exist_ok=True)
    run_dirs = []
    for strategy in DEMO_STRATEGIES:
        for seed in DEMO_SEEDS:
            steps = 4 if quick else None
            cfg = config.resolve(DEMO_PAIR, strategy, seed=seed, steps=steps,
                                 overrides=["eval.every=2"] if quick else None)
            run_dir, summary = trainer.run(cfg, results)
            run_dirs.append(run_dir)
            print(f"{strategy} seed {seed}: accuracy {summary['initial_accuracy']:.3f} -> "
                  f"{summary['final_accuracy']:.3f} in {summary['clock_s']:.0f} s "
                  f"({run_dir})", file=sys.stderr)
    from harness.plots import accuracy_vs_time, summary_table

    fig = accuracy_vs_time(run_dirs, results / "demo_accuracy.png", title=f"Demo: {DEMO_PAIR}")
    table = summary_table(run_dirs)
    (results / "demo_table.md").write_text(table)
    print(table)
    print(f"figure: {fig}")
