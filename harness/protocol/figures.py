"""The report's figures, drawn from a ``harness.protocol.report.Analysis`` alone. Torch-free.

Every strategy legend carries the arm's median machine speed (the matmul probe), and a figure
whose pairs had arms more than ``report.MACHINE_TOLERANCE`` apart says so under its title: the
wall clock then partly measures the machine. Figures read with 2 seeds as with 10: per-seed
curves and per-run points are drawn, bands only where there are seeds to make one.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.protocol import stats  # noqa: E402

if TYPE_CHECKING:
    from harness.protocol.report import Analysis

DPI = 150
EFFECTIVE_WINDOW = 5  # steps in the trailing mean of the effective-fraction curves
CLOCK_AXIS = {"time": ("clock_s", "wall-clock training time (s, evaluation excluded)"),
              "cost": ("cost_s", "cost-clock time (s: counted work x calibrated unit costs)")}
PAIR_MARKERS = "osD^vP*Xh<>"


# after matplotlib's ten: hues none of them has (the leaderboard has eleven strategies besides
# uniform, and a twelfth colour wrapping round to the first made dapo and speed one blue)
EXTRA_COLOURS = ("#b8860b", "#ff00ff", "#556b2f", "#4b0082", "#00ff7f", "#8b4513")


def colours(labels: Sequence[str]) -> dict[str, str]:
    palette = [*plt.rcParams["axes.prop_cycle"].by_key()["color"], *EXTRA_COLOURS]
    # one colour per distinct label (labels arrive once per run)
    others = sorted(set(labels) - {stats.BASELINE})
    out = {stats.BASELINE: "black"}
    out.update({lb: palette[i % len(palette)] for i, lb in enumerate(others)})
    return out


def ordered(labels: Sequence[str]) -> list[str]:
    return sorted(set(labels), key=lambda lb: (lb != stats.BASELINE, lb))


def machine_speeds(a: Analysis) -> dict[str, float]:
    """Median probe (GFLOP/s) over each label's runs; ``nan`` when not probed."""
    return {str(lb): float(v) for lb, v in
            a.records.summaries.groupby("label")["machine_gflops"].median().items()}


def _legend_label(label: str, speeds: Mapping[str, float]) -> str:
    v = speeds.get(label, math.nan)
    return label if math.isnan(v) else f"{label} ({v:.0f} GFLOP/s)"


def _machine_warning(a: Analysis) -> str:
    from harness.protocol.report import machine_notes

    flagged = [n.split(":")[0].removeprefix("pair ") for n in machine_notes(a.records.summaries)]
    if not flagged:
        return ""
    pairs = len(set(a.records.summaries["pair"]))
    where = flagged[0] if len(flagged) == 1 else f"{len(flagged)} of {pairs} pairs"
    return (f"arms' machine speeds differ by more than {_tolerance():.0%} on {where} (legend): "
            "the wall clock partly measures the machine")


def _tolerance() -> float:
    from harness.protocol.report import MACHINE_TOLERANCE

    return MACHINE_TOLERANCE


def _title(fig: plt.Figure, a: Analysis, text: str) -> str:
    """Set the figure's title (with the machine-speed warning, if any) and return its text."""
    warning = _machine_warning(a)
    width = max(60, int(fig.get_figwidth() * 11))  # characters that fit at this font size
    # a sensitivity report (--target-rise) must not pass for the main one
    rise = sorted({m.group(1) for m in (re.search(r"(\d+%) of its rise", str(src))
                                         for src in a.targets["source"]) if m})
    if rise:
        text += f" (targets at {', '.join(rise)} of uniform's rise)"
    title = text + ("\n" + textwrap.fill(f"⚠ {warning}", width) if warning else "")
    fig.suptitle(title, color="black" if not warning else "darkred", fontsize=11)
    return title


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    # constrained layout leaves room for the suptitle and the legend placed "outside" below
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(8.0, 5.2 * ncols), 3.6 * nrows + 1.5),
                             dpi=DPI, squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: plt.Figure, cols: Mapping[str, str], labels: Sequence[str],
            speeds: Mapping[str, float], extra: Sequence[tuple[str, dict]] = ()) -> None:
    handles = [plt.Line2D([], [], color=cols[lb], lw=2, label=_legend_label(lb, speeds))
               for lb in labels]
    handles += [plt.Line2D([], [], label=text, **style) for text, style in extra]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4),
               frameon=False, title="strategy (median machine speed, matmul probe)",
               fontsize=8)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_accuracy(a: Analysis, path: Path, cols: Mapping[str, str], clock: str = "time") -> Path:
    """Smoothed held-out accuracy (the trailing mean that time-to-target reads) against a clock:
    each seed thin, the mean over seeds bold (on a common grid up to the shortest seed's end;
    band +-1 s.e. with 2+ seeds). Each run's held time-to-target is a dot on its own seed's
    curve, the median seed's a triangle: markers sit on the curves they refer to."""
    xcol, xlabel = CLOCK_AXIS[clock]
    evals = a.records.evals
    pairs = sorted(set(evals["pair"]))
    fig, axes = _grid(len(pairs))
    tmap = dict(zip(a.targets["pair"], a.targets["target"], strict=True))
    held = stats.HELD[clock]
    for ax, pair in zip(axes, pairs, strict=True):
        sub = evals[evals["pair"] == pair]
        for label in ordered(sub["label"]):
            c = cols[label]
            runs = [g.sort_values("step") for _, g in sub[sub["label"] == label].groupby("run_id")]
            runs = [g for g in runs if g[xcol].notna().all()]
            if not runs:
                continue
            curves = [(g[xcol].to_numpy(), stats.smooth(g["accuracy"].to_numpy()), g)
                      for g in runs]
            for x, y, _ in curves:
                ax.plot(x, y, color=c, lw=0.7, alpha=0.35)
            end = min(float(x[-1]) for x, _, _ in curves)
            grid = np.linspace(0.0, end, 100)
            ys = np.stack([np.interp(grid, x, y) for x, y, _ in curves])
            mean = ys.mean(axis=0)
            ax.plot(grid, mean, color=c, lw=1.8)
            if len(curves) > 1:
                se = ys.std(axis=0, ddof=1) / math.sqrt(len(curves))
                ax.fill_between(grid, mean - se, mean + se, color=c, alpha=0.15, lw=0)
            rows = a.runs[(a.runs["pair"] == pair) & (a.runs["label"] == label)]
            times = rows.set_index("run_id")[held] if len(rows) else pd.Series(dtype=float)
            median = stats.censored_median(times.to_numpy()) if len(times) else math.inf
            median_drawn = False
            for x, y, g in curves:
                t = float(times.get(g["run_id"].iloc[0], math.inf))
                if not math.isfinite(t):
                    continue
                i = int(np.searchsorted(x, t))  # t is one of this run's evaluation times
                big = t == median and not median_drawn
                median_drawn = median_drawn or big
                ax.plot([x[i]], [y[i]], ls="none", color=c, mec="white",
                        marker="v" if big else "o", ms=9 if big else 4, zorder=5)
        if pair in tmap:
            ax.axhline(tmap[pair], color="grey", ls="--", lw=1)
        ax.set_title(pair)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"held-out accuracy\n(trailing mean of {stats.SMOOTH_WINDOW} evals)")
        ax.grid(alpha=0.3)
    _legend(fig, cols, ordered(evals["label"]), machine_speeds(a),
            [("target", {"color": "grey", "ls": "--"}),
             ("a run holds the target", {"color": "grey", "marker": "o", "ls": "none", "ms": 4}),
             ("median seed holds it", {"color": "grey", "marker": "v", "ls": "none"})])
    seeds = a.records.summaries.groupby(["pair", "label"]).size()
    _title(fig, a, f"Smoothed held-out accuracy vs {clock.replace('time', 'wall')}-clock time "
           f"(thin: each seed; bold: mean over {seeds.min()}-{seeds.max()} seeds, band ±1 s.e.)"
           if seeds.min() != seeds.max() else
           f"Smoothed held-out accuracy vs {clock.replace('time', 'wall')}-clock time (thin: "
           f"each of {seeds.min()} seeds; bold: mean, band ±1 s.e.)")
    return _save(fig, path)


def plot_effective(a: Analysis, path: Path, cols: Mapping[str, str]) -> Path:
    eff = a.records.effective
    pairs = sorted(set(a.records.summaries["pair"]))
    fig, axes = _grid(len(pairs))
    for ax, pair in zip(axes, pairs, strict=True):
        sub = eff[eff["pair"] == pair]
        for label in ordered(sub["label"]):
            mean = sub[sub["label"] == label].groupby("step")["value"].mean().sort_index()
            smooth = mean.rolling(EFFECTIVE_WINDOW, min_periods=1).mean()
            ax.plot(mean.index, mean.to_numpy(), color=cols[label], alpha=0.2, lw=0.8)
            ax.plot(smooth.index, smooth.to_numpy(), color=cols[label], lw=1.8)
        ax.set_title(pair)
        ax.set_xlabel("training step")
        ax.set_ylabel("share of selected groups with\nnon-zero reward variance")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    _legend(fig, cols, ordered(eff["label"]) if len(eff) else [], machine_speeds(a))
    fig.suptitle(f"Effective-question fraction (mean over seeds; bold: {EFFECTIVE_WINDOW}-step "
                 "trailing mean)")
    return _save(fig, path)


def _speedup_groups(a: Analysis, prefix: str, agg_cols: tuple[str, str, str]
                    ) -> list[tuple[str, dict[str, tuple[float, float, float]]]]:
    groups = []
    for pair, grp in a.pairs.groupby("pair", sort=True):
        vals = {r["label"]: (r[prefix], r[f"{prefix}_lo"], r[f"{prefix}_hi"])
                for _, r in grp.iterrows() if r["label"] != stats.BASELINE}
        if vals:  # a pair only uniform has run on (a sweep in progress) has nothing to show
            groups.append((pair, vals))
    single = (a.leaderboard["method"] == "pair").any() and not (
        a.leaderboard["method"] == "IQM").any()
    groups.append(("1 pair: its speedup" if single else "IQM across pairs",
                   {r["label"]: tuple(r[k] for k in agg_cols)
                    for _, r in a.leaderboard.iterrows() if not r["reference"]}))
    return groups


def plot_speedups(a: Analysis, path: Path, cols: Mapping[str, str]) -> Path:
    """Horizontal bars per pair and strategy, plus the aggregate across pairs, with intervals;
    one panel per clock (the ranking one first). Uniform is the dashed line at 1."""
    labels = [lb for lb in ordered(a.pairs["label"]) if lb != stats.BASELINE]
    panels = [(a.rank_clock, "speedup", ("iqm_speedup", "iqm_lo", "iqm_hi"))]
    if a.rank_clock == "cost":
        panels.append(("time", "speedup_wall", ("iqm_wall", "iqm_wall_lo", "iqm_wall_hi")))
    all_groups = [_speedup_groups(a, prefix, agg) for _, prefix, agg in panels]
    finite = [v for groups in all_groups for _, vals in groups for t in vals.values() for v in t
              if math.isfinite(v)]
    xmax = max([1.5, *finite]) * 1.12
    height = 0.8 / max(1, len(labels))
    n = len(all_groups[0])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2.5,
                                                      1.9 + 0.32 * max(1, len(labels)) * n),
                             dpi=DPI, squeeze=False, sharey=True)
    for ax, (clock, _, _), groups in zip(axes[0], panels, all_groups, strict=True):
        for gi, (_name, vals) in enumerate(groups):
            for li, label in enumerate(labels):
                if label not in vals:
                    continue
                y = gi - 0.4 + (li + 0.5) * height
                point, lo, hi = vals[label]
                if math.isnan(point):
                    ax.text(0.02, y, "no uniform reference", va="center", fontsize=7,
                            color="grey")
                    continue
                ax.barh(y, point, height=height * 0.9, color=cols[label], alpha=0.85)
                hi_c = min(hi, xmax * 0.98)
                ax.errorbar(point, y, xerr=[[point - lo], [hi_c - point]], fmt="none",
                            ecolor="black", capsize=2, lw=1)
                if math.isinf(hi):
                    ax.text(hi_c, y, " →∞", va="center", fontsize=7)
                if point == 0:
                    ax.text(0.02, y, "not reached", va="center", fontsize=7, color=cols[label])
        ax.axvline(1.0, color="grey", ls="--", lw=1)
        ax.set_yticks(range(n), [g[0] for g in groups])
        ax.set_xlim(0, xmax)
        ax.set_xlabel(f"speedup over uniform, {clock.replace('time', 'wall')} clock (×; >1 "
                      f"faster; whiskers {a.level:.0%} CI)", fontsize=8)
        ax.set_title(f"{clock.replace('time', 'wall')} clock"
                     + (" (ranks)" if clock == a.rank_clock else ""), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_ylim(n - 0.5, -0.5)  # first group on top, no empty band above it
    speeds = machine_speeds(a)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cols[lb]) for lb in labels]
    handles.append(plt.Line2D([], [], color="grey", ls="--"))
    names = [_legend_label(lb, speeds) for lb in labels]
    names.append(_legend_label(stats.BASELINE, speeds) + ": reference, 1 by definition")
    axes[0][-1].legend(handles, names, title="strategy", loc="upper left",
                       bbox_to_anchor=(1.01, 1), fontsize=7)
    title = _title(fig, a, "Speedup to the held target, per pair and across pairs")
    # tight_layout ignores the suptitle: keep its lines (11 pt, about 0.22 in each) clear of the
    # panel titles, which otherwise overprint the machine warning
    top = 1 - (0.22 * (title.count("\n") + 1) + 0.1) / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    return _save(fig, path)


def plot_dots(a: Analysis, path: Path, cols: Mapping[str, str]) -> Path:
    """Every scored run's time to the held target on the ranking clock, over uniform's median
    on its pair (log scale; left of 1 is faster), one row per strategy, one marker per pair;
    runs that never hold the target sit in the "not reached" column. With a handful of seeds
    this says what a performance profile would only smear."""
    mats = a.mats
    labels = ordered(list(mats.norm_times)) if mats else []
    fig, ax = plt.subplots(figsize=(8.5, 1.6 + 0.55 * max(1, len(labels))), dpi=DPI)
    finite = [float(v) for lb in labels for v in mats.norm_times[lb].ravel()
              if np.isfinite(v) and v > 0]
    lo = min([0.5, *finite]) / 1.3
    hi = max([2.0, *finite]) * 1.3
    never_x = hi * 1.6
    all_pairs = sorted({p for lb in labels for p in mats.pairs[lb]})
    for yi, label in enumerate(labels):
        norm = mats.norm_times[label]
        # one row of the strategy per run: seeds of every pair spread over the band, no overlap
        total = norm.size
        offs_all = np.linspace(-0.32, 0.32, total) if total > 1 else np.zeros(1)
        for pj, pair in enumerate(mats.pairs[label]):
            vals = norm[:, pj]
            offs = offs_all[pj * len(vals):(pj + 1) * len(vals)]
            marker = PAIR_MARKERS[all_pairs.index(pair) % len(PAIR_MARKERS)]
            xs = np.where(np.isfinite(vals), np.maximum(vals, lo), never_x)
            ax.scatter(xs, yi + offs, color=cols[label], marker=marker, s=28,
                       edgecolors="white", linewidths=0.5, zorder=3)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.axvspan(hi * 1.25, never_x * 1.3, color="grey", alpha=0.12, lw=0)
    ax.text(never_x, -0.6, "not\nreached", ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_xlim(lo, never_x * 1.3)
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(range(len(labels)), [_legend_label(lb, machine_speeds(a)) for lb in labels],
                  fontsize=8)
    ax.set_ylim(len(labels) - 0.4, -0.8)
    ax.set_xlabel(f"time to hold the target / uniform's median on the pair "
                  f"({a.rank_clock.replace('time', 'wall')} clock; <1 is faster; log scale)")
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], ls="none", color="grey",
                          marker=PAIR_MARKERS[i % len(PAIR_MARKERS)], label=p)
               for i, p in enumerate(all_pairs)]
    if handles:
        ax.legend(handles=handles, title="pair", fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.01, 1))
    if not labels:
        ax.text(0.5, 0.5, "no pair has a uniform reference time", ha="center",
                transform=ax.transAxes)
    _title(fig, a, "Every run's time to target (one dot per run)")
    fig.tight_layout()
    return _save(fig, path)


def plot_profile(a: Analysis, path: Path, cols: Mapping[str, str]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=DPI)
    for label in ordered(list(a.profiles)):
        prof, ci = a.profiles[label]
        ax.step(a.taus, prof, where="post", color=cols[label], lw=1.8, label=label)
        ax.fill_between(a.taus, ci[0], ci[1], step="post", color=cols[label], alpha=0.15,
                        lw=0)
    ax.axvline(1.0, color="grey", ls="--", lw=1, label="uniform's median time")
    ax.set_xlabel("time budget τ (multiples of uniform's median time-to-target on the pair, "
                  f"{a.rank_clock.replace('time', 'wall')} clock)", fontsize=8)
    ax.set_ylabel("fraction of runs holding the target\nwithin τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, a.taus[-1])
    ax.set_title(f"Time-to-target performance profile (all pairs and seeds; band: {a.level:.0%} "
                 "CI)")
    ax.grid(alpha=0.3)
    ax.legend(title="strategy", fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def draw_all(a: Analysis, out: Path) -> list[Path]:
    cols = colours(list(a.records.summaries["label"]))
    written = [plot_accuracy(a, out / "accuracy_vs_time.png", cols, "time")]
    if a.records.evals["cost_s"].notna().any():
        written.append(plot_accuracy(a, out / "accuracy_vs_cost.png", cols, "cost"))
    written += [plot_speedups(a, out / "speedup.png", cols),
                plot_dots(a, out / "runs_dotplot.png", cols)]
    if a.profiles:
        written.append(plot_profile(a, out / "performance_profile.png", cols))
    written.append(plot_effective(a, out / "effective_frac.png", cols))
    # a figure an earlier report drew and this one does not (too few runs for the profile now,
    # no cost clock) would otherwise stay beside the new ones, describing other records
    for name in OPTIONAL_FIGURES:
        if out / name not in written:
            (out / name).unlink(missing_ok=True)
    return written


OPTIONAL_FIGURES = ("accuracy_vs_cost.png", "performance_profile.png")
