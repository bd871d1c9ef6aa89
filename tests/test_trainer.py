"""The in-process GRPO backbone end to end on a real tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import config
from harness.core import grpo
from harness.core.step import MACHINE_KEY, tier_names, tier_shares
from harness.executors import trainer
from harness.executors.trainer import Trainer
from harness.runs.records import RunRecord

TIME_KEYS = ("time/", "train/grad_norm")


def _cfg(config_dir: Path, seed: int = 0, overrides: list[str] | None = None):
    return config.resolve("test-pair", "uniform", seed=seed, overrides=overrides,
                          config_dir=config_dir)


def _untimed(rows):
    return [(s, k, round(v, 5)) for s, k, v in rows if not k.startswith(TIME_KEYS)]


def test_run_writes_complete_records(config_dir, built_test_model, tmp_path) -> None:
    cfg = _cfg(config_dir)
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    rec = RunRecord(run_dir)
    assert config.load_resolved(rec.config_path).run_id() == cfg.run_id() == run_dir.name
    keys = {k for _, k, _ in rec.read_metrics()}
    for phase in ("select", "generate", "reward", "logprobs", "update"):
        assert f"time/{phase}" in keys
    for key in ("cost/samples", "cost/tokens_generated", "cost/tokens_trained",
                "cost/reference_samples", "train/zero_std_frac", "train/reward_mean",
                "eval/accuracy"):
        assert key in keys
    assert [int(r["step"]) for r in rec.read_eval()] == [0, 2, 4]
    # per-tier held-out accuracy beside each evaluation; the tiers' accuracies weighted by
    # their share of the evaluation set give back the overall accuracy
    tiers = rec.read_eval_tiers()
    assert sorted({s for s, _, _ in tiers}) == [0, 2, 4]
    counts: dict[str, int] = {}
    for q in trainer.Trainer(cfg, tmp_path / "probe", progress=False).sampler.eval_questions:
        counts[q.meta["tier"]] = counts.get(q.meta["tier"], 0) + 1
    assert {t for _, t, _ in tiers} == set(counts)
    for row in rec.read_eval():
        mixed = sum(counts[t] * acc for s, t, acc in tiers if s == row["step"]) / sum(counts.values())
        assert abs(mixed - row["accuracy"]) < 1e-9
    # which tiers each step trained on: every pool tier named, shares summing to one
    shares: dict[int, dict[str, float]] = {}
    for step, k, v in rec.read_metrics():
        if k.startswith("train/tier_share/"):
            shares.setdefault(step, {})[k.removeprefix("train/tier_share/")] = v
    assert sorted(shares) == [1, 2, 3, 4]
    for by_tier in shares.values():
        assert set(by_tier) == set(counts) and abs(sum(by_tier.values()) - 1.0) < 1e-9
    # repeats: a fresh uniform epoch picks nothing twice
    assert all(v == 0.0 for _, k, v in rec.read_metrics() if k == "select/repeat_frac")
    assert summary["steps"] == 4 and summary["samples"] == 4 * 8 * 4
    # the machine-speed probe after each evaluation but the start, its median in the summary
    probes = [(s, v) for s, k, v in rec.read_metrics() if k == MACHINE_KEY]
    assert [s for s, _ in probes] == [2, 4] and all(v > 0 for _, v in probes)
    assert summary["machine_gflops"] == float(np.median([v for _, v in probes]))
    # clock excludes evaluation: it is the sum of the per-step times
    step_times = sum(v for _, k, v in rec.read_metrics() if k == "time/step")
    assert abs(summary["clock_s"] - step_times) < 1e-6
    # a finished run is found, not rerun
    again_dir, again = trainer.run(cfg, tmp_path, progress=False)
    assert again_dir == run_dir and again == summary


def test_tier_shares_by_hand() -> None:
    tiers = np.array(["easy", "hard", "easy", "easy"])
    names = tier_names(tiers)
    assert names == ["easy", "hard"]
    assert tier_shares("p", tiers, names, [0, 1, 2, 1]) == {"p/easy": 0.5, "p/hard": 0.5}
    assert tier_shares("p", tiers, names, [0, 2]) == {"p/easy": 1.0, "p/hard": 0.0}
    assert tier_shares("p", tiers, names, []) == {}  # nothing replayed yet: no share
    untiered = np.array(["", ""])  # a pool without tiers
    assert tier_shares("p", untiered, tier_names(untiered), [0, 1]) == {}


def test_same_seed_same_selections_and_first_steps(config_dir, built_test_model, tmp_path) -> None:
    a = Trainer(_cfg(config_dir, overrides=["train.steps=2"]), tmp_path / "a", progress=False)
    b = Trainer(_cfg(config_dir, overrides=["train.steps=2"]), tmp_path / "b", progress=False)
    for step in (1, 2):
        ma, mb = a.train_step(step), b.train_step(step)
        assert {k: v for k, v in ma.items() if not k.startswith(TIME_KEYS)} == \
               {k: v for k, v in mb.items() if not k.startswith(TIME_KEYS)}
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_update_moves_policy_towards_positive_advantages(config_dir, built_test_model, tmp_path) -> None:
    overrides = ["train.lr=3e-3", "train.temperature=1.5", "train.batch_size=16",
                 "train.mini_batch_size=16"]
    tr = Trainer(_cfg(config_dir, overrides=overrides), tmp_path / "u", progress=False)
    ro, rewards = tr.rollout_and_score(list(range(16)), 4, step=1, salt=0)
    adv = grpo.group_norm_advantages(torch.tensor(rewards, dtype=torch.float32)).reshape(-1)
    assert (adv != 0).any(), "need at least one informative group"
    old, _ = tr._old_logprobs(ro)
    for _ in range(5):  # several backbone updates on this one fixed batch
        tr._update(ro, adv, old, None)
    with torch.no_grad():
        new, _ = tr._old_logprobs(ro)
    seq_gain = ((new - old) * ro.response_mask).sum(-1)
    pos, neg = adv > 0, adv < 0
    # sequences with positive advantage became more likely, negative ones less likely
    assert seq_gain[pos].mean() > 0 > seq_gain[neg].mean()


def test_sigkill_keeps_steps_and_rerun_resumes_exactly(config_dir, built_test_model, tmp_path) -> None:
    overrides = ["train.steps=6", "train.checkpoint_every=2"]
    cfg = _cfg(config_dir, seed=3, overrides=overrides)
    # uninterrupted reference
    ref_dir, _ = trainer.run(cfg, tmp_path / "ref", progress=False)
    ref_rows = _untimed(RunRecord(ref_dir).read_metrics())

    env = {**os.environ, "SELBENCH_CONFIG_DIR": str(config_dir)}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--pair", "test-pair", "--strategy",
           "uniform", "--seed", "3", "--results", str(tmp_path / "killed"), "--quiet"]
    for o in overrides:
        cmd += ["--set", o]
    run_dir = tmp_path / "killed" / "runs" / cfg.run_id()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # kill after the step-2 checkpoint but before the run ends
    while time.time() < deadline:
        rows = RunRecord(run_dir).read_metrics() if (run_dir / "metrics.csv").exists() else []
        if (run_dir / "checkpoint" / "state.pt").exists() and {r[0] for r in rows} >= {3}:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rec = RunRecord(run_dir)
    done = {r[0] for r in rec.read_metrics()}
    assert not rec.finished and 3 <= max(done) < 6
    assert _untimed(rec.read_metrics()) == [r for r in ref_rows if r[0] <= max(done)]
    # rerun: resumes from the checkpoint and finishes exactly like the uninterrupted run
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(run_dir)
    assert _untimed(rec.read_metrics()) == ref_rows
    assert json.loads(rec.summary_path.read_text())["final_accuracy"] == \
        json.loads((ref_dir / "summary.json").read_text())["final_accuracy"]


def test_oracle_rollouts_are_paid_on_the_clock(config_dir, built_test_model, tmp_path) -> None:
    cfg = config.resolve("test-pair", "oracle", seed=0, config_dir=config_dir,
                         overrides=["train.steps=2", "strategy.candidates=32", "strategy.samples=4"])
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    rows = RunRecord(run_dir).read_metrics()
    ref = {s: v for s, k, v in rows if k == "cost/reference_samples"}
    assert ref == {1: 128.0, 2: 0.0}  # one round (mu = 2) of 32 candidates x 4 samples
    assert summary["reference_samples"] == 128
    assert summary["samples"] == 2 * 8 * 4 + 128


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_cuda_device_without_cuda_stops_with_a_config_error() -> None:
    from harness.config.base import ConfigError
    from harness.core.sampler import device_for as _device

    assert _device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="train.device"):
        _device("cuda")


def test_compile_switch_is_off_unless_asked(config_dir, built_test_model, tmp_path,
                                            monkeypatch) -> None:
    monkeypatch.delenv("SELBENCH_COMPILE", raising=False)
    _, summary = trainer.run(_cfg(config_dir, seed=4), tmp_path, progress=False)
    assert summary["compiled"] is False
    model = torch.nn.Linear(2, 2)
    plain = model.forward
    monkeypatch.setenv("SELBENCH_COMPILE", "0")
    assert not trainer.compile_wanted()
    assert not trainer.compile_policy(model, trainer.compile_wanted()) and model.forward == plain


@pytest.mark.slow
def test_compiled_run_matches_eager_to_rounding(config_dir, built_test_model, tmp_path,
                                                monkeypatch) -> None:
    """SELBENCH_COMPILE=1 compiles the policy's forward: the same run, the same selections and
    rewards, losses within rounding of the eager run's (fused kernels round differently)."""
    monkeypatch.delenv("SELBENCH_COMPILE", raising=False)
    eager_dir, _ = trainer.run(_cfg(config_dir, seed=6), tmp_path / "eager", progress=False)
    monkeypatch.setenv("SELBENCH_COMPILE", "1")
    compiled_dir, summary = trainer.run(_cfg(config_dir, seed=6), tmp_path / "compiled",
                                        progress=False)
    assert summary["compiled"] is True
    eager = {(s, k): v for s, k, v in RunRecord(eager_dir).read_metrics()}
    compiled = {(s, k): v for s, k, v in RunRecord(compiled_dir).read_metrics()}
    assert eager.keys() == compiled.keys()
    for key, value in eager.items():
        if key[1].startswith("cost/") or key[1] == "train/reward_mean":
            assert compiled[key] == value, key
        elif key[1] in ("train/loss", "train/grad_norm"):
            assert abs(compiled[key] - value) <= 1e-4 * max(abs(value), 1e-3), key
