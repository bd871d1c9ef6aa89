"""The in-process executor on a GPU: parity with the CPU, then per-phase step times.

1. Parity, on tiny1m-chainsum's shipped weights: one step-1 batch is sampled on the CPU; its
   response log-probs, GRPO loss and gradient norm are computed on the CPU and on the device
   from the same batch and compared within a tolerance; the same prompts are then sampled on
   the device from the same (seed, step) stream and the share of identical responses reported.
2. Timing: a few uniform GRPO steps through the real executor (``harness.executors.run``,
   ``train.device``) on tiny1m-chainsum and on a 34M-parameter model with 256-token responses
   (scripts/gpu_check/gpu34m-chainsum.yaml, built on the spot), reading ``time/*`` and
   ``tokens/*`` back from the run records: the generation share of each step.

Writes ``gpu_check.md`` and ``gpu_check.json`` into ``--out``; exits 1 when parity fails.
``--cpu`` runs the same path on the CPU with tiny sizes (what tests/test_gpu_check.py runs).
Run it through scripts/gpu_check.sh, which installs what the GPU machine lacks.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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

from harness import config, executors  # noqa: E402
from harness.core import grpo  # noqa: E402
from harness.core.rollout import Rollouts, sample, sequence_logprobs  # noqa: E402
from harness.core.step import seed_for  # noqa: E402
from harness.executors.trainer import Trainer  # noqa: E402
from harness.instrument import policy  # noqa: E402
from harness.runs.records import RunRecord  # noqa: E402

SUITE_PAIR = "tiny1m-chainsum"
BIG_PAIR = str(PROJECT / "scripts" / "gpu_check" / "gpu34m-chainsum.yaml")
# fp32 on both sides; a GPU sums in another order, so only rounding may differ
LOGP_TOL = 1e-3
REL_TOL = 1e-3
ABS_TOL = 1e-6
# --cpu: the same path at sizes a test runs in seconds
CPU_SIZES = ["task.n_train=256", "task.n_eval=16", "train.batch_size=4", "train.group_size=4", "train.mini_batch_size=4",
             "train.micro_batch_size=16", "train.max_new_tokens=12", "eval.max_questions=8"]
CPU_BIG = ["model.tiny.hidden_size=64", "model.tiny.num_layers=2", "model.tiny.num_heads=2",
           "model.tiny.num_kv_heads=2", "model.tiny.intermediate_size=128",
           "model.tiny.warm_steps=2", "model.warm_start_task.n_train=64",
           "train.max_new_tokens=16"]


def _loss_logp_grad(model: Any, ro: Rollouts, adv: torch.Tensor, cfg: config.RunConfig
                    ) -> tuple[torch.Tensor, float, float]:
    """(response log-probs, GRPO loss, gradient norm of the responses' mean NLL). The gradient
    is the NLL's: the GRPO loss's is zero whenever every group's rewards tie."""
    model.train()
    model.zero_grad(set_to_none=True)
    logp = sequence_logprobs(model, ro, cfg.train.temperature)
    loss, _ = grpo.policy_loss(logp, logp.detach(), adv, ro.response_mask, cfg.train.clip_eps)
    nll = -(logp * ro.response_mask).sum() / ro.response_mask.sum()
    nll.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    return logp.detach().cpu(), float(loss.detach()), float(norm)


def parity(device: str, overrides: list[str], work: Path) -> dict[str, Any]:
    cfg = config.resolve(SUITE_PAIR, "uniform", overrides=[*overrides, "train.device=cpu"])
    trainer = Trainer(cfg, work / "parity", progress=False)
    t = cfg.train
    indices = list(range(t.batch_size))
    ro, rewards = trainer.rollout_and_score(indices, t.group_size, step=1, salt=0)
    adv = grpo.group_norm_advantages(torch.tensor(rewards, dtype=torch.float32)).reshape(-1)
    on_device = copy.deepcopy(trainer.model).to(device)
    cpu_logp, cpu_loss, cpu_norm = _loss_logp_grad(trainer.model, ro, adv, cfg)
    dev_logp, dev_loss, dev_norm = _loss_logp_grad(on_device, ro.to(device), adv.to(device), cfg)
    real = ro.response_mask.bool()
    logp_err = float((cpu_logp - dev_logp).abs()[real].max())
    # the same prompts sampled on the device from the same stream as the CPU batch above
    tokens = [trainer.train_tokens[i] for i in indices for _ in range(t.group_size)]
    on_device.eval()
    dev_ro = sample(on_device, tokens, max_new_tokens=t.max_new_tokens, temperature=t.temperature,
                    eos_ids=trainer.sampler.eos_ids, pad_id=trainer.sampler.pad_id,
                    generator=torch.Generator().manual_seed(seed_for(cfg.seed, 1, 0)))
    same = [bool(torch.equal(a[m.bool()], b[n.bool()])) for a, m, b, n in zip(
        ro.response_ids, ro.response_mask, dev_ro.response_ids.cpu(), dev_ro.response_mask.cpu(),
        strict=True)]
    out = {
        "device": device, "sequences": len(tokens), "real_tokens": int(real.sum()),
        "logp_max_abs_err": logp_err, "loss_cpu": cpu_loss, "loss_device": dev_loss,
        "loss_rel_err": abs(cpu_loss - dev_loss) / max(abs(cpu_loss), 1e-12),
        "grad_norm_cpu": cpu_norm, "grad_norm_device": dev_norm,
        "grad_norm_rel_err": abs(cpu_norm - dev_norm) / max(cpu_norm, 1e-12),
        "same_samples_share": sum(same) / len(same),
    }
    # relative, with an absolute floor: a loss of 0 (tied groups) may come back as 1e-9
    out["ok"] = bool(out["logp_max_abs_err"] <= LOGP_TOL
                     and math.isclose(cpu_loss, dev_loss, rel_tol=REL_TOL, abs_tol=ABS_TOL)
                     and math.isclose(cpu_norm, dev_norm, rel_tol=REL_TOL, abs_tol=ABS_TOL))
    return out


def timed(pair: str, device: str, steps: int, overrides: list[str], work: Path) -> dict[str, Any]:
    cfg = config.resolve(pair, "uniform", overrides=[
        *overrides, f"train.device={device}", f"train.steps={steps}", "train.checkpoint_every=0"])
    start = time.perf_counter()
    run_dir, summary = executors.run(cfg, work / "results", progress=False)
    wall = time.perf_counter() - start
    per_step: dict[int, dict[str, float]] = {}
    for step, key, value in RunRecord(run_dir).read_metrics():
        per_step.setdefault(step, {})[key] = value
    # step 1 pays for kernel choices and allocator growth: the medians leave it out
    later = [m for s, m in sorted(per_step.items()) if s > 1] or list(per_step.values())

    def med(key: str) -> float:
        return statistics.median(m.get(key, 0.0) for m in later)

    phases = ("select", "generate", "reward", "logprobs", "update")
    row = {"pair": cfg.pair, "device": device, "steps": steps,
           "params": None, "batch": f"{cfg.train.batch_size} x {cfg.train.group_size}",
           "max_new_tokens": cfg.train.max_new_tokens,
           "step_s": med("time/step"), **{f"{p}_s": med(f"time/{p}") for p in phases},
           "generate_share": med("time/generate") / max(med("time/step"), 1e-12),
           "response_len": med("train/response_len"),
           **{f"tokens_{k}": med(f"tokens/{k}") for k in (
               "generate_real", "generate_padded", "update_real", "update_padded")},
           "first_step_s": per_step[min(per_step)]["time/step"],
           "eval_s": float(summary["eval_s"]) if summary else 0.0, "wall_s": wall}
    model, _, _ = policy.load(cfg.model, progress=False)  # built by the run: a quick load
    row["params"] = sum(p.numel() for p in model.parameters())
    return row


def _env(device: str) -> dict[str, Any]:
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    import transformers

    env["transformers"] = transformers.__version__
    return env


def report(env: dict[str, Any], par: dict[str, Any], rows: list[dict[str, Any]],
           total_s: float) -> str:
    lines = [
        "# GPU check (scripts/gpu_check.sh)",
        "",
        f"{env.get('gpu', env['device'])}; Python {env['python']}, torch {env['torch']} (CUDA "
        f"{env['cuda']}), transformers {env['transformers']}; {total_s:.0f} s in all.",
        "",
        f"## Parity with the CPU ({SUITE_PAIR}, one step-1 batch of {par['sequences']} sequences, "
        f"{par['real_tokens']} response tokens): {'PASS' if par['ok'] else 'FAIL'}",
        "",
        f"- response log-probs, max abs difference: {par['logp_max_abs_err']:.2e} "
        f"(tolerance {LOGP_TOL:g})",
        f"- GRPO loss: CPU {par['loss_cpu']:.6g}, device {par['loss_device']:.6g} (relative "
        f"difference {par['loss_rel_err']:.2e}, tolerance {REL_TOL:g})",
        f"- gradient norm of the responses' mean NLL: CPU {par['grad_norm_cpu']:.6g}, device {par['grad_norm_device']:.6g} "
        f"(relative difference {par['grad_norm_rel_err']:.2e}, tolerance {REL_TOL:g})",
        f"- responses sampled on the device from the CPU's stream identical to the CPU's: "
        f"{par['same_samples_share']:.0%} (a rounding flip changes a draw and the rest of its "
        "response; not a pass criterion)",
        "",
        "## Step times (uniform, in-process executor; medians over the steps after the first)",
        "",
        "| pair | params | B x G | max new tokens | step s | generate s | update s | "
        "generate share | response tokens | generate tokens real / padded | "
        "update tokens real / padded | first step s | eval s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['pair']} | {r['params'] / 1e6:.1f}M | {r['batch']} | {r['max_new_tokens']} | "
            f"{r['step_s']:.3f} | {r['generate_s']:.3f} | {r['update_s']:.3f} | "
            f"{r['generate_share']:.0%} | {r['response_len']:.0f} | "
            f"{r['tokens_generate_real']:.0f} / {r['tokens_generate_padded']:.0f} | "
            f"{r['tokens_update_real']:.0f} / {r['tokens_update_padded']:.0f} | "
            f"{r['first_step_s']:.2f} | {r['eval_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="the same path on the CPU, tiny sizes")
    ap.add_argument("--device", default="cuda", help="torch device of the check (not with --cpu)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 4; --cpu: 2)")
    ap.add_argument("--out", type=Path, default=PROJECT / "results" / "gpu-check")
    args = ap.parse_args()
    device = "cpu" if args.cpu else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device (use --cpu)",
              file=sys.stderr)
        return 2
    steps = args.steps or (2 if args.cpu else 4)
    small = CPU_SIZES if args.cpu else []
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        par = parity(device, small, work)
        print(f"parity: {json.dumps(par)}", file=sys.stderr)
        rows = [timed(SUITE_PAIR, device, steps, small, work)]
        print(f"timed: {json.dumps(rows[-1])}", file=sys.stderr)
        rows.append(timed(BIG_PAIR, device, steps, [*small, *CPU_BIG] if args.cpu else [], work))
        print(f"timed: {json.dumps(rows[-1])}", file=sys.stderr)
    total = time.perf_counter() - start
    env = _env(device)
    (args.out / "gpu_check.json").write_text(json.dumps(
        {"env": env, "parity": par, "steps": rows, "total_s": total}, indent=2) + "\n")
    text = report(env, par, rows, total)
    (args.out / "gpu_check.md").write_text(text)
    print(text)
    return 0 if par["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
