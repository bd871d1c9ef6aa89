"""One uniform GRPO step against its useful-work floor; writes results/bench/step.md.

For each pair (default: the CPU suite's tiny1m-chainsum and tiny600k-chainsum, their shipped
weights loaded by the normal config path) the in-process trainer runs one warm-up step and then
``--steps`` measured ones with ``--threads`` torch threads. Per phase (generate, update) the
table gives the median measured time, the floor (harness.instrument.workfloor: analytic FLOPs of each
distinct prompt once and each response token once, unpadded, divided by the matmul rate of the
model's own linear shapes measured here, in this process, right after the steps) and their
ratio, with the real and padded token counts the trainer logs (``tokens/*``).

    python scripts/bench_step.py [--pairs P ...] [--steps 3] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import torch  # noqa: E402

from harness import config  # noqa: E402
from harness.core.rollout import Rollouts  # noqa: E402
from harness.core.step import TRAIN_SALT  # noqa: E402
from harness.executors.trainer import Trainer  # noqa: E402
from harness.instrument.workfloor import Shapes, matmul_rate, rollout_groups, step_forward_flops  # noqa: E402

PAIRS = ["tiny1m-chainsum", "tiny600k-chainsum"]
TARGET = 2.0


def _observed(trainer: Trainer) -> Trainer:
    """The real trainer, keeping the last step's fresh rollouts (its own batch, not a strategy's
    extra rollouts) for the FLOP count."""
    generate = trainer.sampler.generate

    def keep(indices: list[int], n_samples: int, step: int, salt: int) -> tuple[Rollouts, list[str]]:
        ro, texts = generate(indices, n_samples, step, salt)
        if salt == TRAIN_SALT:
            trainer.last_rollouts = ro
        return ro, texts

    trainer.sampler.generate = keep
    return trainer


def bench_pair(pair: str, steps: int, threads: int, config_dir: Path | None = None
               ) -> dict[str, Any]:
    cfg = config.resolve(pair, "uniform", overrides=[f"train.threads={threads}",
                                                     "train.checkpoint_every=0"],
                         **({"config_dir": config_dir} if config_dir else {}))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _observed(Trainer(cfg, Path(tmp) / "run", progress=False))
        shapes = Shapes.of(trainer.model)
        rows = []
        for step in range(1, steps + 2):  # step 1 warms the allocator and kernel choices up
            metrics = trainer.train_step(step)
            if step > 1:
                ro = trainer.last_rollouts
                groups = rollout_groups(ro.prompt_mask, ro.response_mask, cfg.train.group_size)
                rows.append((metrics, step_forward_flops(shapes, groups)))
    t = cfg.train
    update_rows = min(t.micro_batch_size, t.batch_size * t.group_size)
    # decode runs B x G rows a token at a time; the update, micro-batches of whole sequences
    real_per_row = statistics.median(m["tokens/update_real"] for m, _ in rows) / (
        t.batch_size * t.group_size)
    rate_gen = matmul_rate(shapes, t.batch_size * t.group_size)
    rate_upd = matmul_rate(shapes, max(1, round(update_rows * real_per_row)))
    out: dict[str, Any] = {"pair": pair, "params": sum(p.numel() for p in trainer.model.parameters()),
                           "rate_gen": rate_gen, "rate_upd": rate_upd, "phases": {}}
    for phase, factor, rate in (("generate", 1, rate_gen), ("update", 3, rate_upd)):
        measured = statistics.median(m[f"time/{phase}"] for m, _ in rows)
        flops = statistics.median(factor * f for _, f in rows)
        out["phases"][phase] = {
            "measured": measured, "flops": flops, "floor": flops / rate,
            "real": statistics.median(m[f"tokens/{phase}_real"] for m, _ in rows),
            "padded": statistics.median(m[f"tokens/{phase}_padded"] for m, _ in rows)}
    out["step"] = statistics.median(m["time/step"] for m, _ in rows)
    out["step_floor"] = sum(p["floor"] for p in out["phases"].values())
    return out


def table(results: list[dict[str, Any]], steps: int, threads: int) -> str:
    lines = [
        "# One GRPO step against its useful-work floor",
        "",
        f"Uniform selection, the pair's own settings (B x G, max_new_tokens), {threads} torch "
        f"thread(s); median of {steps} steps after one warm-up. Written by "
        "`scripts/bench_step.py`.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared "
        f"with other work; load average {os.getloadavg()[0]:.1f} when done), torch "
        f"{torch.__version__}.",
        "",
        "Floor: FLOPs of each distinct prompt once and each response token once, unpadded and "
        "causal, counted analytically from the model's shapes (harness/instrument/workfloor.py; it equals "
        "torch's FlopCounterMode on an unpadded eager forward, tests/test_workfloor.py); the "
        "update is forward + backward = 3x. Divided by the fp32 matmul rate of the model's own "
        "linear shapes, measured in the same process right after the steps (generate at B x G "
        "rows, update at one micro-batch's real tokens). "
        f"Target: measured / floor <= {TARGET:g}.",
        "",
        "| pair | params | phase | measured s | floor GFLOP | matmul GFLOP/s | floor s | "
        "measured / floor | real tokens | padded tokens |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for phase, p in r["phases"].items():
            rate = r["rate_gen"] if phase == "generate" else r["rate_upd"]
            lines.append(
                f"| {r['pair']} | {r['params'] / 1e6:.2f}M | {phase} | {p['measured']:.3f} | "
                f"{p['flops'] / 1e9:.2f} | {rate / 1e9:.1f} | {p['floor']:.4f} | "
                f"{p['measured'] / p['floor']:.1f}x | {p['real']:.0f} | {p['padded']:.0f} |")
        lines.append(f"| {r['pair']} | | whole step | {r['step']:.3f} | | | "
                     f"{r['step_floor']:.4f} | {r['step'] / r['step_floor']:.1f}x | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", nargs="+", default=PAIRS)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=PROJECT / "results" / "bench" / "step.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = [bench_pair(p, args.steps, args.threads) for p in args.pairs]
    text = table(results, args.steps, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
