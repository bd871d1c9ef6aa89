"""Figures and tables read from run records alone (never from memory of a run). Torch-free."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.records import RunRecord  # noqa: E402


def _load(run_dir: Path) -> tuple[dict, list[dict[str, float]]]:
    rec = RunRecord(run_dir)
    return json.loads(rec.summary_path.read_text()), rec.read_eval()


def accuracy_vs_time(run_dirs: list[Path], out: Path, title: str = "") -> Path:
    """Held-out accuracy against on-the-clock seconds, one line per run, coloured by strategy."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    colours: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for run_dir in run_dirs:
        summary, curve = _load(run_dir)
        name = summary["strategy"]
        colour = colours.setdefault(name, palette[len(colours) % len(palette)])
        ax.plot([r["clock_s"] for r in curve], [r["accuracy"] for r in curve], marker="o",
                markersize=3, color=colour, alpha=0.85,
                label=name if name not in ax.get_legend_handles_labels()[1] else None)
    ax.set_xlabel("training wall-clock time, evaluation excluded (s)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title="strategy")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def summary_table(run_dirs: list[Path]) -> str:
    """A markdown table: one row per strategy, means over seeds."""
    by: dict[str, list[dict]] = defaultdict(list)
    for run_dir in run_dirs:
        by[_load(run_dir)[0]["strategy"]].append(_load(run_dir)[0])
    lines = ["| strategy | seeds | accuracy start | accuracy end | clock (s) | samples |",
             "|---|---|---|---|---|---|"]
    for name, rows in by.items():
        def mean(key: str, rows: list[dict] = rows) -> float:
            return sum(r[key] for r in rows) / len(rows)
        lines.append(f"| {name} | {len(rows)} | {mean('initial_accuracy'):.3f} | "
                     f"{mean('final_accuracy'):.3f} | {mean('clock_s'):.0f} | {mean('samples'):.0f} |")
    return "\n".join(lines) + "\n"
