"""Sweeps: expansion and validation of sweep files, skipping/resuming, local and Ray execution."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from harness import config
from harness.executors import trainer
from harness.protocol import sweep, sweep_exec
from harness.protocol.sweep import BUSY, FINISHED, NEW, RESUME, SweepError
from harness.runs.paths import PROJECT_ROOT
from harness.runs.records import RunRecord

ORACLE = {"name": "oracle", "set": ["strategy.candidates=32", "strategy.samples=4"]}
# the retired CPU suite (v1), archived with its sweeps in studies/cpu-suite-v1
STUDIES = PROJECT_ROOT / "studies"
RETIRED_SUITE = STUDIES / "cpu-suite-v1" / "cpu-suite.yaml"
CPU_PAIRS = ["tiny-a-chainsum", "tiny-a-equations", "tiny-a-mixed", "tiny-b-arith",
             "tiny-b-chainsum", "smollm2-arith"]
SMALL = ["train.steps=2", "train.threads=1", "eval.every=2", "eval.max_questions=8"]


@pytest.fixture(scope="module")
def sweep_configs(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test configs plus a pair whose data file does not exist: it validates (paths are
    runtime resources) and fails when its run starts."""
    root = tmp_path_factory.mktemp("sweepcfg") / "configs"
    shutil.copytree(config_dir, root)
    (root / "sweeps").mkdir()
    broken = yaml.safe_load((root / "pairs" / "test-pair.yaml").read_text())
    broken["task"] = {"source": "parquet", "path": str(root / "missing.parquet"),
                      "n_train": 64, "n_eval": 32}
    (root / "pairs" / "test-broken.yaml").write_text(yaml.safe_dump(broken))
    return root


def _write(root: Path, name: str, body: dict) -> Path:
    path = root / "sweeps" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _plan(root: Path, body: dict, results: Path, name: str = "s") -> sweep.Plan:
    spec = sweep.load_spec(_write(root, name, body))
    return sweep.make_plan(spec, results, root)


def _cli(root: Path, *args: str, timeout: float = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SELBENCH_CONFIG_DIR": str(root), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", "sweep", *args, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _untimed(run_dir: Path) -> list[tuple[int, str, float]]:
    return [r for r in RunRecord(run_dir).read_metrics() if not r[1].startswith("time/")]


def _accuracies(run_dir: Path) -> list[tuple[float, float]]:
    return [(r["step"], r["accuracy"]) for r in RunRecord(run_dir).read_eval()]


# ---------------------------------------------------------------- fast: plan and validation


def test_expand_crosses_pairs_strategies_seeds_with_override_order(sweep_configs, tmp_path) -> None:
    body = {"pairs": ["test-pair"],
            "strategies": ["uniform", ORACLE,
                           {"name": "uniform", "replay": True, "set": ["train.steps=5"]}],
            "seeds": [0, 1], "set": ["train.steps=3", "train.threads=1"],
            "targets": {"test-pair": 0.5}}
    plan = _plan(sweep_configs, body, tmp_path)
    assert [(r.label, r.seed) for r in plan.runs] == [
        ("uniform", 0), ("uniform", 1), ("oracle", 0), ("oracle", 1),
        ("uniform+rr", 0), ("uniform+rr", 1)]
    assert len({r.run_id for r in plan.runs}) == 6
    # the strategy entry's `set` wins over the sweep's; the sweep's reaches every run
    assert [r.cfg.train.steps for r in plan.runs] == [3, 3, 3, 3, 5, 5]
    assert all(r.cfg.train.threads == 1 for r in plan.runs)
    assert plan.runs[2].cfg.strategy == {"name": "oracle", "candidates": 32, "samples": 4}
    assert [r.cfg.replay.enabled for r in plan.runs] == [False] * 4 + [True] * 2
    # each run is exactly what `selbench run` would resolve
    same = config.resolve("test-pair", "oracle", seed=1, config_dir=sweep_configs,
                          overrides=["train.steps=3", "train.threads=1"] + ORACLE["set"])
    assert plan.runs[3].run_id == same.run_id()
    assert plan.counts == {FINISHED: 0, RESUME: 0, NEW: 6, BUSY: 0}
    meta = json.loads(sweep.write_metadata(plan).read_text())
    assert meta["targets"] == {"test-pair": 0.5}
    assert [m["run_id"] for m in meta["runs"]] == [r.run_id for r in plan.runs]


@pytest.mark.parametrize("change, needles", [
    ({"seed": [0]}, ["'seed'", "did you mean 'seeds'"]),
    ({"strategies": ["unifrom"]}, ["strategies[0]=unifrom", "did you mean 'uniform'"]),
    ({"pairs": ["test-pear"]}, ["pairs[0]=test-pear", "did you mean 'test-pair'"]),
    ({"set": ["train.stepz=3"]}, ["train.stepz", "did you mean 'steps'"]),
    ({"strategies": [{"name": "uniform", "replay": 3}]}, ["strategies[0].replay",
                                                          "true or false"]),
    ({"strategies": [{"name": "uniform", "sets": []}]}, ["strategies[0].sets",
                                                         "did you mean 'set'"]),
    ({"strategies": [{"name": "oracle", "set": ["strategy.samples=1"]}]},
     ["strategies[0]=oracle", "strategy.samples", ">= 2"]),
    ({"seeds": []}, ["'seeds'", "non-empty"]),
    ({"targets": {"test-other": 0.5}}, ["targets.test-other", "a pair of this sweep"]),
    ({"targets": {"test-pair": 1.5}}, ["targets.test-pair", "[0, 1]"]),
    ({"strategies": ["uniform", {"name": "uniform", "set": []}]},
     ["strategies[1]=uniform", "same run as", "remove one"]),
])
def test_bad_entries_fail_before_anything_runs(sweep_configs, tmp_path, change, needles) -> None:
    body = {"pairs": ["test-pair"], "strategies": ["uniform"], "seeds": [0], **change}
    with pytest.raises(SweepError) as err:
        _plan(sweep_configs, body, tmp_path)
    msg = str(err.value)
    assert "s.yaml" in msg and len(msg.splitlines()) == 1
    for needle in needles:
        assert needle in msg, msg
    assert not (tmp_path / "runs").exists()


def test_every_bad_entry_is_reported_and_cli_exits_2(sweep_configs, tmp_path, capsys,
                                                     monkeypatch) -> None:
    from harness import cli

    monkeypatch.setattr("harness.runs.paths.CONFIG_DIR", sweep_configs)  # as SELBENCH_CONFIG_DIR

    body = {"pairs": ["test-pair"], "seeds": [0, 1],
            "strategies": ["uniform", "nope", {"name": "oracle", "set": ["strategy.mu=0"]}]}
    path = _write(sweep_configs, "bad", body)
    assert cli.main(["sweep", str(path), "--results", str(tmp_path)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines[0].startswith("selbench: error:") and len(lines) == 2, lines
    assert "strategies[1]=nope" in lines[0] and "unknown strategy 'nope'" in lines[0]
    assert "strategies[2]=oracle" in lines[1] and "strategy.mu" in lines[1]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_missing_predictor_stops_the_sweep_before_it_starts(sweep_configs, tmp_path,
                                                            monkeypatch, capsys) -> None:
    from harness import cli

    monkeypatch.setattr("harness.runs.paths.CONFIG_DIR", sweep_configs)
    body = {"pairs": ["test-pair"], "strategies": ["uniform", "dots"], "seeds": [0, 1],
            "set": [f"predictor.artifact={tmp_path / 'nowhere'}"]}
    plan = _plan(sweep_configs, body, tmp_path, name="dots")
    (line,) = sweep.missing_resources(plan)
    assert "strategies[1]=dots" in line and "selbench predictor fit --pair test-pair" in line
    assert cli.main(["sweep", str(plan.spec.path), "--results", str(tmp_path)]) == 2
    assert "no difficulty predictor" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_find_sweep_file_by_name_and_suite_files(tmp_path, monkeypatch) -> None:
    configs = tmp_path / "configs"
    (configs / "sweeps").mkdir(parents=True)
    shutil.copy(STUDIES / "cpu-suite-v1" / "quick.yaml", configs / "sweeps" / "quick.yaml")
    assert sweep.find_sweep_file("quick", configs).name == "quick.yaml"
    with pytest.raises(SweepError, match="did you mean 'quick'"):
        sweep.find_sweep_file("quik", configs)
    # an archived sweep runs by its path, relative to the project from any folder; its bare
    # name (no longer in configs/sweeps) gets that path as the hint
    monkeypatch.chdir(tmp_path)
    assert sweep.find_sweep_file("studies/cpu-suite-v1/cpu-suite.yaml") == RETIRED_SUITE
    with pytest.raises(SweepError, match="did you mean 'studies/cpu-suite-v1/cpu-suite.yaml'"):
        sweep.find_sweep_file("cpu-suite", tmp_path / "empty")
    # the retired suite's sweep file, archived
    suite = sweep.load_spec(RETIRED_SUITE)
    assert suite.pairs == CPU_PAIRS
    assert set(CPU_PAIRS) <= set(config.list_names("pairs")) | set(config.list_archived("pairs"))
    assert [(s.name, s.replay) for s in suite.strategies] == [
        ("uniform", None), ("dots", None), ("dots", True), ("oracle", None), ("dapo", None),
        ("greso", None), ("mopps", None)]
    assert suite.seeds == [0, 1, 2] and "train.threads=1" in suite.overrides


def test_archived_sweeps_validate_and_keep_their_run_ids() -> None:
    """Every sweep of studies/ still expands (its archived pairs and models resolve by name),
    and into the very run ids of the study's kept reports: moving the files changed no run."""
    for study in sorted(p for p in STUDIES.iterdir() if p.is_dir()):
        files = sorted(study.glob("*.yaml"))
        ids = {r.run_id for f in files for r in sweep.expand(sweep.load_spec(f))}
        for runs in sorted(study.glob("kept/*/runs.csv")):
            if runs.parent.name == "dots-study":
                continue  # recorded at f77b0c1, before config fields that changed its ids
            kept = {row["run_id"] for row in csv.DictReader(runs.read_text().splitlines())}
            assert kept and kept <= ids, (runs, sorted(kept - ids)[:3])


def test_default_workers_one_per_core_per_thread(sweep_configs, tmp_path) -> None:
    body = {"pairs": ["test-pair"], "strategies": ["uniform"], "seeds": [0]}
    one = _plan(sweep_configs, {**body, "set": ["train.threads=1"]}, tmp_path).runs
    two = _plan(sweep_configs, {**body, "set": ["train.threads=2"]}, tmp_path).runs
    dflt = _plan(sweep_configs, body, tmp_path).runs  # threads 0: torch uses every core
    assert sweep.default_workers(one, cores=8) == 8
    assert sweep.default_workers(two, cores=8) == 4
    assert sweep.default_workers(dflt, cores=8) == 1


def test_plan_sees_finished_resumable_and_busy_runs(sweep_configs, built_test_model,
                                                     tmp_path) -> None:
    body = {"pairs": ["test-pair"], "strategies": ["uniform"], "seeds": [0, 1, 2],
            "set": SMALL}
    plan = _plan(sweep_configs, body, tmp_path)
    done, half, held = plan.runs
    trainer.run(done.cfg, tmp_path, progress=False)  # a finished run
    tr = trainer.Trainer(half.cfg, tmp_path / "runs" / half.run_id, progress=False)
    tr.record.start(config.dump(half.cfg))  # a run stopped after its step-1 checkpoint
    tr.record.log_step(1, tr.train_step(1))
    tr.step = 1
    tr.save_checkpoint()
    held_dir = tmp_path / "runs" / held.run_id
    held_dir.mkdir(parents=True)
    with open(held_dir / ".lock", "w") as lock:  # another process writing the third
        fcntl.flock(lock, fcntl.LOCK_EX)
        plan = _plan(sweep_configs, body, tmp_path)
        assert [(r.state, r.steps_logged) for r in plan.runs] == [
            (FINISHED, 2), (RESUME, 1), (BUSY, 0)]
        assert "1 finished (skipped), 1 to resume from a checkpoint, 0 new, 1 busy" in \
            sweep.format_plan(plan)
        assert [r.run_id for r in plan.todo()] == [half.run_id, held.run_id]
        # told to skip busy runs, a sweep reports them without starting anything for them
        ex = sweep_exec.LocalExecutor(tmp_path, tmp_path / "logs", workers=1)
        only_busy = sweep.Plan(plan.spec, [plan.runs[2]], tmp_path, plan.counts)
        outcomes = sweep_exec.schedule(only_busy, ex, skip_busy=True, progress=False)
        assert [(o.run.run_id, o.status) for o in outcomes] == [(held.run_id, BUSY)]
        assert sweep_exec.exit_code(outcomes) == 1 and not (held_dir / "metrics.csv").exists()


# ---------------------------------------------------------------- real sweeps


def test_local_sweep_failure_does_not_stop_others(sweep_configs, built_test_model,
                                                  tmp_path) -> None:
    body = {"pairs": ["test-pair", "test-broken"], "strategies": ["uniform"], "seeds": [0],
            "set": SMALL}
    plan = _plan(sweep_configs, body, tmp_path, name="mixed")
    good, bad = plan.runs
    ex = sweep_exec.make_executor("local", plan, None, workers=2)
    outcomes = sweep_exec.schedule(plan, ex, progress=False)
    status = {o.run.run_id: (o.status, o.message) for o in outcomes}
    assert status[good.run_id] == (sweep_exec.DONE, "")
    assert status[bad.run_id][0] == sweep_exec.FAILED
    assert "missing.parquet" in status[bad.run_id][1] and "logs" in status[bad.run_id][1]
    assert sweep_exec.exit_code(outcomes) == 1
    summary = json.loads((tmp_path / "runs" / good.run_id / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["seed"] == 0
    # the closing lines say where the finished run's time went: phases that make up its steps
    text = sweep_exec.format_outcomes(plan, outcomes)
    (line,) = [ln for ln in text.splitlines() if "time per phase (1 runs" in ln]
    shares = [int(s) for s in re.findall(r"(?:select|generate|reward|logprobs|update) (\d+)%", line)]
    assert "generate" in line and "update" in line and 97 <= sum(shares) <= 103, line
    assert re.search(r"evaluation, off the clock, \+\d+%", line), line
    # planned again, the finished run is skipped and only the failed one is left to do
    again = _plan(sweep_configs, body, tmp_path, name="mixed")
    assert [r.run_id for r in again.todo()] == [bad.run_id]


@pytest.mark.slow
def test_cli_sweep_reports_failures_and_rerun_skips_finished(sweep_configs, built_test_model,
                                                             tmp_path) -> None:
    body = {"pairs": ["test-pair", "test-broken"], "strategies": ["uniform"], "seeds": [0],
            "set": SMALL}
    path = _write(sweep_configs, "mixed", body)
    first = _cli(sweep_configs, str(path), "--results", str(tmp_path), "--workers", "2")
    assert first.returncode == 1, first.stderr
    good, bad = _plan(sweep_configs, body, tmp_path, name="mixed").runs
    assert (good.state, bad.state) == (FINISHED, NEW)
    fail_lines = [ln for ln in first.stderr.splitlines() if ln.strip().startswith("failed:")]
    assert len(fail_lines) == 1 and bad.run_id in fail_lines[0], first.stderr
    assert "missing.parquet" in fail_lines[0] and "mixed/logs" in fail_lines[0]
    assert first.stdout.strip() == str(tmp_path / "sweeps" / "mixed")
    # the rerun skips the finished run (untouched) and retries the failed one
    before = (tmp_path / "runs" / good.run_id / "metrics.csv").stat().st_mtime_ns
    second = _cli(sweep_configs, str(path), "--results", str(tmp_path), "--workers", "2")
    assert second.returncode == 1
    assert "1 finished (skipped), 0 to resume from a checkpoint, 1 new" in second.stderr
    assert "1 finished before, 0 finished now, 1 failed" in second.stderr
    assert (tmp_path / "runs" / good.run_id / "metrics.csv").stat().st_mtime_ns == before


KILL_SWEEP = {"pairs": ["test-pair"], "strategies": ["uniform", ORACLE], "seeds": [0, 1],
              "set": ["train.steps=4", "train.checkpoint_every=1", "train.threads=1",
                      "eval.every=2", "eval.max_questions=16"]}


@pytest.mark.slow
def test_sigkilled_sweep_resumes_to_the_same_records(sweep_configs, built_test_model,
                                                     tmp_path) -> None:
    path = _write(sweep_configs, "kill", KILL_SWEEP)
    ref = _cli(sweep_configs, str(path), "--results", str(tmp_path / "ref"), "--workers", "2")
    assert ref.returncode == 0, ref.stderr
    runs = _plan(sweep_configs, KILL_SWEEP, tmp_path / "ref", name="kill").runs
    assert all(r.state == FINISHED for r in runs)

    out = tmp_path / "killed"
    env = {**os.environ, "SELBENCH_CONFIG_DIR": str(sweep_configs)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", str(path), "--results",
                             str(out), "--workers", "2", "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    dirs = [out / "runs" / r.run_id for r in runs]
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once a run has a checkpoint and some are unfinished
        ckpt = [d for d in dirs if (d / "checkpoint" / "state.pt").exists()
                and not (d / "summary.json").exists()]
        if ckpt:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the killed runs' children die with the sweep, a moment after it (the kernel frees their
    # folder locks as they go): nothing may hold a run once they are gone
    deadline = time.time() + 30
    mid = _plan(sweep_configs, KILL_SWEEP, out, name="kill")
    while mid.counts[BUSY] and time.time() < deadline:
        time.sleep(0.2)
        mid = _plan(sweep_configs, KILL_SWEEP, out, name="kill")
    assert mid.counts[BUSY] == 0, mid.counts
    assert mid.counts[FINISHED] < 4 and mid.counts[RESUME] >= 1, mid.counts
    again = _cli(sweep_configs, str(path), "--results", str(out), "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert f"{mid.counts[RESUME]} to resume from a checkpoint" in again.stderr
    for run, d in zip(runs, dirs, strict=True):
        r = tmp_path / "ref" / "runs" / run.run_id
        assert _accuracies(d) == _accuracies(r), run.run_id
        assert _untimed(d) == _untimed(r), run.run_id
        assert json.loads((d / "summary.json").read_text())["final_accuracy"] == \
            json.loads((r / "summary.json").read_text())["final_accuracy"]


@pytest.mark.slow
def test_sweep_waits_for_a_run_another_process_is_writing(sweep_configs, built_test_model,
                                                          tmp_path) -> None:
    body = {"pairs": ["test-pair"], "strategies": ["uniform"], "seeds": [0], "set": SMALL}
    path = _write(sweep_configs, "wait", body)
    (run,) = _plan(sweep_configs, body, tmp_path, name="wait").runs
    run_dir = tmp_path / "runs" / run.run_id
    run_dir.mkdir(parents=True)
    env = {**os.environ, "SELBENCH_CONFIG_DIR": str(sweep_configs)}
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", str(path),
                                 "--results", str(tmp_path), "--quiet"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(20)  # the sweep has long started its worker, which waits for the lock
        assert proc.poll() is None and not (run_dir / "metrics.csv").exists()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "1 busy" in err and "1 finished now" in err
    assert (run_dir / "summary.json").exists()


# a Ray head node in a process of its own, alive until its stdin closes; on the loopback address
# (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is read when ray is imported)
RAY_HEAD = """
import sys, ray
ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1],
               object_store_memory=100 * 1024 * 1024, log_to_driver=False)
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.mark.slow
def test_ray_executor_on_a_local_cluster(sweep_configs, built_test_model, tmp_path) -> None:
    pytest.importorskip("ray")
    body = {"pairs": ["test-pair"], "strategies": ["uniform"], "seeds": [0, 1], "set": SMALL}
    path = _write(sweep_configs, "ray", body)
    # Ray's socket paths must stay short: a temp dir under /tmp, not pytest's deep tmp_path
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # the sweep sets it itself
           "RAY_AUTH_MODE": "token"}  # the head's ~/.ray/auth_token, as Ray's docs set it up
    head = subprocess.Popen([sys.executable, "-c", RAY_HEAD, ray_tmp], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert head.stdout is not None and head.stdin is not None
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        proc = _cli(sweep_configs, str(path), "--executor", "ray", "--address", address,
                    "--results", str(tmp_path), env={"RAY_AUTH_MODE": "token"})
    finally:
        if head.stdin is not None:
            head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert "executor: ray, up to 2 runs at once" in proc.stderr
    assert "0 finished before, 2 finished now, 0 failed" in proc.stderr
    runs = _plan(sweep_configs, body, tmp_path, name="ray").runs
    assert all(r.state == FINISHED for r in runs)
    # a run on a Ray worker writes the same records as the same run in this process
    local_dir, _ = trainer.run(runs[1].cfg, tmp_path / "local", progress=False)
    ray_dir = tmp_path / "runs" / runs[1].run_id
    assert _untimed(ray_dir) == _untimed(local_dir)
    assert _accuracies(ray_dir) == _accuracies(local_dir)
