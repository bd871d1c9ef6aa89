"""Does ``torch.compile`` of the policy pay after its compile time? Writes results/bench/compile.md.

For each pair (default: tiny1m-chainsum) one process runs the in-process trainer's uniform
steps from one seed eager and with the forward compiled (``SELBENCH_COMPILE=1``'s path,
:func:`harness.executors.trainer.compile_policy`), interleaved step by step so that both arms
see the same load on a shared machine; twice: with inductor's cache in a fresh folder (a cold
compile, as on a fresh machine), then with that cache warm (a sweep's later runs). It reports the median step after the first
(the first step of the eager arm is a warm-up), the compiled arm's first step (its compile
time), the steps a run needs before the compile has paid for itself, the two arms' time for a
150-step run, and how far the compiled losses and gradient norms drift from the eager ones (last digits:
fused kernels round differently, so a sweep started eager must stay eager).

    python scripts/bench_compile.py [--pairs P ...] [--steps 6] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import torch  # noqa: E402

from harness import config  # noqa: E402
from harness.executors.trainer import Trainer  # noqa: E402

RUN_STEPS = 150  # the suite's run length


def _trainer(pair: str, threads: int, compiled: bool, folder: Path) -> Trainer:
    cfg = config.resolve(pair, "uniform", overrides=[f"train.threads={threads}",
                                                     "train.checkpoint_every=0"])
    trainer = Trainer(cfg, folder, progress=False, compiled=compiled)
    trainer.record.start(config.dump(cfg))
    return trainer


def _step(trainer: Trainer, step: int) -> tuple[float, float, float]:
    """(wall seconds, loss, gradient norm) of one step."""
    start = time.perf_counter()
    metrics = trainer.train_step(step)
    return (time.perf_counter() - start, float(metrics["train/loss"]),
            float(metrics["train/grad_norm"]))


def _arms(pair: str, steps: int, threads: int, folder: Path
          ) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """An eager and a compiled trainer from the same seed, their steps interleaved (eager step
    k, then compiled step k) so that both see the same load on a shared machine."""
    eager = _trainer(pair, threads, False, folder / "eager")
    compiled = _trainer(pair, threads, True, folder / "compiled")
    e_rows, c_rows = [], []
    for step in range(1, steps + 1):
        e_rows.append(_step(eager, step))
        c_rows.append(_step(compiled, step))
    return e_rows, c_rows


def bench_pair(pair: str, steps: int, threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {"pair": pair, "steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # a cold compile
        for name in ("cold", "warm"):
            # "warm": again, with inductor's compiled graphs in its cache (dynamo still traces
            # the new model), as for every run of a sweep after the first
            torch._dynamo.reset()
            eager, arm = _arms(pair, steps, threads, Path(tmp) / name)
            e_step = statistics.median(row[0] for row in eager[1:])
            c_step = statistics.median(row[0] for row in arm[1:])
            saving = e_step - c_step
            out[name] = {
                "eager_s": e_step, "step_s": c_step, "first_s": arm[0][0],
                "break_even": (arm[0][0] - c_step) / saving if saving > 0 else float("inf"),
                "run_ratio": (arm[0][0] + (RUN_STEPS - 1) * c_step) / (RUN_STEPS * e_step),
                "drift": max(abs(c - e) / max(abs(e), 1e-12)
                             for a, b in zip(eager, arm, strict=True)
                             for e, c in zip(a[1:], b[1:], strict=True))}
    return out


def table(rows: list[dict[str, Any]], threads: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        "# torch.compile of the policy: does it pay after its compile time?", "",
        "Uniform steps of one process, eager and compiled interleaved step by step "
        "(`SELBENCH_COMPILE=1`: the forward "
        "under `torch.compile(dynamic=True)`; inductor's cache cold, as on a fresh machine, then "
        f"warm, as for a sweep's later runs), same seed, {threads} "
        "torch thread(s); medians of the steps after the first. Written by "
        "`python scripts/bench_compile.py`.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared; load average "
        f"{load:.1f} when done), torch {torch.__version__}.", "",
        "| pair | inductor cache | eager step s | compiled step s | compiled / eager | "
        "first compiled step s (compile) | steps to pay back | 150-step run, compiled / eager "
        "| largest loss or gradient-norm difference (relative) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        for name in ("cold", "warm"):
            c = r[name]
            lines.append(f"| {r['pair']} | {name} | {c['eager_s']:.2f} | {c['step_s']:.2f} | "
                         f"{c['step_s'] / c['eager_s']:.2f}x | {c['first_s']:.0f} | "
                         f"{c['break_even']:.0f} | {c['run_ratio']:.2f}x | "
                         f"{c['drift']:.1e} |")
    lines += ["", "Compiled kernels round differently from eager ones (the last column), so the "
              "switch is off by default and a sweep keeps the mode it started in (`selbench "
              "recheck` shows the difference); each run's summary says whether it was compiled."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", nargs="+", default=["tiny1m-chainsum"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(PROJECT / "results" / "bench" / "compile.md"))
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is the warm-up / the compile)")
    rows = [bench_pair(p, args.steps, args.threads) for p in args.pairs]
    text = table(rows, args.threads)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
