"""The README's worked strategy and sweep file, run from the README itself."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import config
from harness.protocol import sweep
from harness.runs.paths import PROJECT_ROOT
from strategies.base import GroupFeedback, StepFeedback
from strategies.registry import build_strategy

README = PROJECT_ROOT / "README.md"


def _block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in the README."""
    text = README.read_text()
    m = re.search(rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)```", text, re.S)
    assert m, f"README.md has no code block after <!-- {marker} -->"
    return m.group(1)


@pytest.fixture
def example_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "near_half.py").write_text(_block("worked-strategy: near_half.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("near_half", None)


def test_the_worked_strategy_is_short_and_picks_prompts_nearest_one_half(example_module) -> None:
    assert len(_block("worked-strategy: near_half.py").splitlines()) < 50
    s = build_strategy("near_half:ENTRY", {"candidates_ratio": 4}, pool_size=8, seed=0)
    # observed pass rates: only prompt 5 sits at 0.5; 0.25 and 0.75 tie next
    rates = [0.0, 1.0, 0.25, 0.0, 1.0, 0.5, 0.75, 1.0]
    s.update(StepFeedback(step=1, groups=tuple(
        GroupFeedback(index=i, rewards=(1.0,) * round(4 * r) + (0.0,) * (4 - round(4 * r)))
        for i, r in enumerate(rates))))
    ctx = SimpleNamespace(step=2, pool_size=8, group_size=4, batch_size=2)
    picked = s.select(ctx, 2)  # candidates_ratio 4 x 2 = the whole pool of 8
    assert picked[0] == 5 and set(picked) < {5, 2, 6}
    state = s.state_dict()
    again = build_strategy("near_half:ENTRY", {"candidates_ratio": 4}, pool_size=8, seed=0)
    again.load_state_dict(state)
    assert again.select(ctx, 3) == s.select(ctx, 3)  # a resumed run selects the same


def test_the_worked_strategy_trains_a_few_steps(example_module, config_dir, built_test_model,
                                               tmp_path: Path) -> None:
    from harness.executors.trainer import Trainer

    cfg = config.resolve("test-pair", "near_half:ENTRY", config_dir=config_dir,
                         overrides=["strategy.candidates_ratio=2", "train.steps=2"])
    summary = Trainer(cfg, tmp_path / "run", progress=False).run()
    assert summary["steps"] == 2
    assert (tmp_path / "run" / "summary.json").is_file()


def test_the_worked_sweep_plans_uniform_against_it(example_module, tmp_path: Path) -> None:
    path = tmp_path / "near-half.yaml"
    path.write_text(_block("worked-sweep: near-half.yaml"))
    plan = sweep.make_plan(sweep.load_spec(path), tmp_path / "results")
    assert sorted({r.label for r in plan.runs}) == ["near_half:ENTRY", "uniform"]
    assert sorted(r.seed for r in plan.runs) == [0, 0, 1, 1, 2, 2]
    assert {r.cfg.pair for r in plan.runs} == {"tiny600k-chainsum"}


def test_the_generated_tables_are_current() -> None:
    """README.md's leaderboard and performance blocks are what scripts/readme_tables.py makes of
    the committed report and benchmark tables."""
    import subprocess

    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "readme_tables.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "<!-- performance:start -->\n| measure |" in README.read_text()
