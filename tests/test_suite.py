"""The RETIRED CPU suite (v1): six pairs that validate, and (slow) the pass-rate spread they
were tuned for.

These tests check the retired suite, the pair list of the archived sweep
``studies/cpu-suite-v1/cpu-suite.yaml`` (its tiny pairs now live in
``studies/tiny-pairs/configs/pairs/`` and still resolve by name); the new suite is
``configs/suites/cpu.yaml`` and has tests of its own. Other CPU pairs (the DOTS study's pairs
with warm-start slips, which trade always-solved questions for room to improve) are configs too
but not suite members.
"""

from __future__ import annotations

import pytest

from harness import config
from harness.protocol import sweep
from harness.runs.paths import PROJECT_ROOT

# the retired suite (v1), not the new one
RETIRED_SUITE = PROJECT_ROOT / "studies" / "cpu-suite-v1" / "cpu-suite.yaml"
CPU_PAIRS = sweep.load_spec(RETIRED_SUITE).pairs
TINY_PAIRS = [p for p in CPU_PAIRS if p.startswith("tiny-")]
# the paper's own pairs (GPU, kind 'hf' models) are tested in test_openrlhf.py


def test_six_pairs_validate_and_mirror_the_paper_structure() -> None:
    pairs = CPU_PAIRS
    assert len(pairs) == 6
    assert set(pairs) <= set(config.list_names("pairs")) | set(config.list_archived("pairs"))
    models = {}
    for name in pairs:
        cfg = config.resolve(name, "uniform", seed=0)
        models.setdefault(cfg.model.name, []).append(name)
        assert set(q["name"] for q in cfg.task.tiers), "every pool mixes named difficulty tiers"
    # a few models, several datasets each, and a real small LLM among them
    assert len(models) == 3 and "smollm2" in models
    assert sorted(len(v) for v in models.values()) == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("pair", TINY_PAIRS)
def test_base_policy_has_the_spread_of_real_math_rl(pair: str) -> None:
    from harness.instrument.probe import probe

    row = probe(config.resolve(pair, "uniform", seed=0), max_questions=512, progress=False)
    assert 0.2 <= row["mean_pass_rate"] <= 0.6, row
    assert row["never_solved"] >= 0.2, row
    assert row["always_solved"] >= 0.1, row


def test_every_cpu_pair_validates() -> None:
    # suite members or not, every pair config that is not a GPU pair resolves, archived ones too
    for name in [*config.list_names("pairs"), *config.list_archived("pairs")]:
        if not name.startswith("qwen"):
            assert config.resolve(name, "uniform", seed=0).pair == name
