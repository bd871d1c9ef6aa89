"""``watch.tensorboard`` and ``watch.wandb``: event files and an offline W&B run beside the CSV
records, holding the same numbers, and switches that do not change what the run is."""

from __future__ import annotations

import pytest

from harness import config
from harness.executors import trainer
from harness.runs.records import RunRecord

pytest.importorskip("tensorboard")


def test_tensorboard_events_hold_the_records_numbers(config_dir, built_test_model,
                                                     tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = config.resolve("test-pair", "uniform", config_dir=config_dir)
    cfg = config.resolve("test-pair", "uniform", config_dir=config_dir,
                         overrides=["watch.tensorboard=true"])
    assert cfg.run_id() == plain.run_id()  # watching a run is not another run
    run_dir, _ = trainer.run(cfg, tmp_path, progress=False)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    rows = RunRecord(run_dir).read_metrics()
    for key in ("train/reward_mean", "train/loss", "cost/tokens_generated", "eval/accuracy"):
        want = [(s, v) for s, k, v in rows if k == key]
        got = [(e.step, e.value) for e in events.Scalars(key)]
        assert want and got == [(s, pytest.approx(v, rel=1e-6)) for s, v in want], key


def _wandb_history(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Per key, the (step, value) pairs of a run's offline W&B file(s), read back without W&B's
    servers: the file is a LevelDB-style log (32 KiB blocks; records of a 7-byte header, then
    protobuf ``Record`` bytes, split across blocks as FIRST/MIDDLE/LAST) after a 7-byte file
    header."""
    from wandb.proto import wandb_internal_pb2 as pb

    history: dict[str, list[tuple[int, float]]] = {}
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert files, f"no offline W&B run under {run_dir / 'wandb'}"
    for path in files:
        data, pos, part = path.read_bytes(), 7, b""
        assert data[:4] == b":W&B"
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            if left < 7:  # block trailer
                pos += left
                continue
            size, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
            chunk, pos = data[pos + 7:pos + 7 + size], pos + 7 + size
            if kind in (2, 3):  # FIRST, MIDDLE
                part += chunk
                continue
            if kind not in (1, 4):  # padding
                continue
            record = pb.Record()
            record.ParseFromString(part + chunk)
            part = b""
            if record.WhichOneof("record_type") == "history":
                for item in record.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if not key.startswith("_"):  # W&B's own _step, _runtime, _timestamp
                        history.setdefault(key, []).append(
                            (record.history.step.num, float(item.value_json)))
    return history


def test_wandb_offline_run_holds_the_records_numbers(config_dir, built_test_model,
                                                     tmp_path) -> None:
    pytest.importorskip("wandb")
    plain = config.resolve("test-pair", "uniform", config_dir=config_dir)
    cfg = config.resolve("test-pair", "uniform", config_dir=config_dir,
                         overrides=["watch.wandb=true"])
    assert cfg.run_id() == plain.run_id()
    run_dir, _ = trainer.run(cfg, tmp_path, progress=False)
    history = _wandb_history(run_dir)
    rows = RunRecord(run_dir).read_metrics()
    assert set(history) == {k for _, k, _ in rows}  # every metric, nothing else
    for key in ("train/reward_mean", "train/loss", "cost/tokens_generated", "eval/accuracy"):
        want = [(s, v) for s, k, v in rows if k == key]
        assert want and history[key] == [(s, pytest.approx(v, rel=1e-6)) for s, v in want], key


@pytest.mark.parametrize("package", ["tensorboard", "wandb"])
def test_a_watch_without_its_package_is_a_one_line_error(package, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(config.ConfigError, match=f"watch.{package}.*pip install {package}"):
        config.resolve("tiny600k-chainsum", "uniform", overrides=[f"watch.{package}=true"])
