"""``selbench config``: the resolved config as commented YAML, without importing torch."""

from __future__ import annotations

import dataclasses

import yaml
from test_light_imports import _assert_light

from harness import config
from harness.config import show as configshow
from strategies.registry import get_entry


def test_the_printed_config_is_the_resolved_one_with_help_and_run_id() -> None:
    cfg = config.resolve("tiny600k-chainsum", "dots-cooldown", seed=3,
                         overrides=["strategy.alpha=0.4", "replay.enabled=true"])
    text = configshow.render(cfg)
    assert text.splitlines()[0].startswith(f"# run id: {cfg.run_id()}")
    data = yaml.safe_load(text)
    want = cfg.to_dict()
    # the strategy block shows the registered defaults beside what was set
    defaults = {f.name: f.default for f in dataclasses.fields(get_entry("dots-cooldown").params_cls)}
    assert data.pop("strategy") == {"name": "dots-cooldown", **defaults, "alpha": 0.4}
    want.pop("strategy")
    assert data == want
    # each field comes after its help
    lines = text.splitlines()
    lr = next(i for i, line in enumerate(lines) if line.strip().startswith("lr:"))
    assert lines[lr - 1].strip().startswith("# ") and "learning rate" in lines[lr - 1].lower()


def test_selbench_config_answers_without_torch_and_errors_in_one_line() -> None:
    out = _assert_light(
        "from harness import cli\n"
        "assert cli.main(['config', 'tiny1m-mixed', '--strategy', 'mopps']) == 0\n")
    assert "name: mopps" in out and "# run id: tiny1m-mixed__mopps__" in out
    err = _assert_light(
        "import contextlib, io, sys\n"
        "from harness import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stderr(buf):\n"
        "    rc = cli.main(['config', 'tiny1m-mixed', '--set', 'train.lr=fast'])\n"
        "assert rc == 2, rc\n"
        "print(buf.getvalue())\n")
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and "train.lr" in lines[0], lines


def test_configs_and_results_follow_the_working_directory(tmp_path) -> None:
    """A project folder (configs/base.yaml) at or above the working directory is where configs
    are read and results written; outside any project results go to ./results, never into the
    installed package."""
    import os
    import subprocess
    import sys

    from harness.runs.paths import PROJECT_ROOT

    project = tmp_path / "mine"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "base.yaml").write_text("{}\n")
    (project / "deep" / "er").mkdir(parents=True)
    code = "from harness.runs import paths; print(paths.CONFIG_DIR); print(paths.results_dir())"
    env = {k: v for k, v in os.environ.items()
           if k not in ("SELBENCH_CONFIG_DIR", "SELBENCH_RESULTS", "SELBENCH_PROJECT")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)

    def where(cwd, **extra: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**env, **extra},
                             capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert where(project / "deep" / "er") == [str(project / "configs"), str(project / "results")]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert where(outside) == [str(PROJECT_ROOT / "configs"), str(outside / "results")]
    assert where(outside, SELBENCH_PROJECT=str(project)) == [str(project / "configs"),
                                                             str(project / "results")]
