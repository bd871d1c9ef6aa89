"""scripts/gpu_check.sh end to end in its CPU mode: the same script path the GPU machine runs
(parity check, timed runs through the executor, report), at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runs.paths import PROJECT_ROOT


@pytest.mark.slow
def test_gpu_check_cpu_mode(tmp_path: Path) -> None:
    env = dict(os.environ, OUT=str(tmp_path / "out"), SELBENCH_CACHE=str(tmp_path / "cache"),
               PYTHON=sys.executable)
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    par = result["parity"]
    # both sides on the CPU: the same numbers, the same draws
    assert par["ok"] and par["logp_max_abs_err"] == 0.0 and par["same_samples_share"] == 1.0
    assert par["grad_norm_cpu"] > 0  # the compared gradient is not trivially zero
    pairs = [row["pair"] for row in result["steps"]]
    assert pairs == ["tiny1m-chainsum", "gpu34m-chainsum"]
    for row in result["steps"]:
        assert row["device"] == "cpu" and row["steps"] == 2
        assert 0 < row["generate_s"] < row["step_s"] and 0 < row["generate_share"] < 1
        assert 0 < row["tokens_generate_real"] <= row["tokens_generate_padded"]
    text = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "PASS" in text and "gpu34m-chainsum" in text
