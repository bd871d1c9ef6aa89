"""The machine-speed probe the trainer runs at each evaluation."""

from __future__ import annotations

import pytest
import torch

from harness.instrument import machine


def test_probe_leaves_the_random_streams_alone() -> None:
    # the probe runs inside training: it must not shift the draws of the run that follows
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    machine.matmul_gflops(size=32, seconds=0.001)
    assert torch.equal(torch.rand(4), expected)


def test_probe_reports_gflops_in_a_plausible_range() -> None:
    # units: a slip of 1e3 either way (MFLOP/s or TFLOP/s) falls outside; any CPU this runs on
    # does a 64 x 64 fp32 matmul at more than 0.05 and less than 50,000 GFLOP/s
    rate = machine.matmul_gflops(size=64, seconds=0.005)
    assert 0.05 < rate < 50_000


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"seconds": 0.0}, {"repeats": 0}])
def test_bad_probe_settings_name_themselves(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        machine.matmul_gflops(**kwargs)
