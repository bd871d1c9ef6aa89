"""Config loading, validation and the CLI's quick paths import neither torch nor transformers.

Each check runs in a fresh interpreter: within the pytest process other tests have long since
imported torch, so ``sys.modules`` here would say nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from harness.config import files as configfiles
from harness.runs.paths import PROJECT_ROOT

HEAVY = ("torch", "transformers")


def _assert_light(code: str) -> str:
    check = (f"\nimport sys\nheavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
             "assert not heavy, f'imported {heavy}'\n")
    proc = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_every_pair_and_strategy_resolves_without_torch() -> None:
    out = _assert_light(
        "from harness import config\n"
        "from strategies.registry import available\n"
        "pairs, strategies = config.list_names('pairs'), available()\n"
        "for pair in pairs:\n"
        "    for strategy in strategies:\n"
        "        cfg = config.resolve(pair, strategy)\n"
        "        assert cfg.pair == pair and cfg.strategy_name == strategy\n"
        "        cfg.run_id()\n"
        "print(len(pairs), len(strategies))\n")
    n_pairs, n_strategies = map(int, out.split())
    assert n_pairs == len(configfiles.list_names("pairs", PROJECT_ROOT / "configs")) >= 10
    assert n_strategies >= 8


def test_cli_listings_help_and_config_errors_without_torch() -> None:
    pair = "tiny1m-chainsum"
    _assert_light(
        "import contextlib, io\nfrom harness import cli\n"
        "for what in ('pairs', 'strategies', 'models'):\n"
        "    assert cli.main(['list', what]) == 0\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])\n"
        "bad = [\n"
        f"    ['run', '--pair', '{pair}', '--strategy', 'uniform', '--set', 'train.lrr=1'],\n"
        f"    ['run', '--pair', '{pair}', '--strategy', 'uniform', '--set', 'train.lr=-1'],\n"
        f"    ['run', '--pair', '{pair}', '--strategy', 'unifrm'],\n"
        f"    ['run', '--pair', '{pair}', '--strategy', 'uniform', '--dry-run'],\n"
        f"    ['probe', '--pair', '{pair}', '--set', 'eval.every=0'],\n"
        f"    ['predictor', 'fit', '--pair', '{pair}', '--set', 'predictor.embeder=x'],\n"
        "    ['models', 'build', 'tiny1m-arithh'],\n"
        "    ['suite', 'check', '--pair', 'nope'],\n"
        "    ['sweep', 'nope'],\n"
        "]\n"
        "for argv in bad:\n"
        "    assert cli.main(argv) == 2, argv\n")


def test_fast_yaml_loader_reads_every_config_as_safe_load_does() -> None:
    files = sorted([*PROJECT_ROOT.glob("configs/**/*.yaml"), *PROJECT_ROOT.glob("studies/**/*.yaml")])
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert yaml.load(text, Loader=configfiles.SAFE_LOADER) == yaml.safe_load(text), path


def test_passed_tier_checks_are_remembered_and_failures_are_not(tmp_path: Path) -> None:
    env_code = f"import os\nos.environ['SELBENCH_CACHE'] = {str(tmp_path)!r}\n"
    resolve = env_code + (
        "import sys\nfrom harness import config\nconfig.resolve('tiny1m-chainsum', 'uniform')\n"
        "print('reasoning_gym' in sys.modules)\n")
    assert _assert_light(resolve).strip() == "True"  # a cold cache: the checks ran
    assert list((tmp_path / "gym-checks").glob("*.json"))
    assert _assert_light(resolve).strip() == "False"  # the same tiers again: no import
    bad = env_code + (
        "import sys\nfrom harness import config\nfrom harness.config.base import ConfigError\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        config.resolve('tiny1m-chainsum', 'uniform',\n"
        "                       overrides=['task.tiers=[{name: t, dataset: chain_sum, "
        "params: {min_terms: 5, max_terms: 2}}]'])\n"
        "    except ConfigError as err:\n"
        "        assert 'rejected by chain_sum' in str(err), err\n"
        "    else:\n"
        "        raise AssertionError('a bad tier passed')\n")
    _assert_light(bad)
