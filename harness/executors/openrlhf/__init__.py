"""The OpenRLHF executor: OpenRLHF 0.11.2's GRPO on Ray, selbench in charge of the data.

``selbench run --pair P --strategy S --executor openrlhf [--dry-run]`` and the sweep call
:func:`run`. It prepares the run folder's ``openrlhf/`` files (the resolved config, the reward
function file, the launch spec), then runs::

    python -m harness.executors.openrlhf.launch RUN_DIR/openrlhf/launch.json

which is ``python -m openrlhf.cli.train_ppo_ray <flags>`` with selbench's controller hooked in as
the prompt source (see :mod:`.launch` and :mod:`.controller`). ``--dry-run`` prints all of it
without starting anything and needs neither GPUs, nor OpenRLHF, nor the model or data.
The flags come from one function, :func:`.flags.openrlhf_argv`.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig, dump
from harness.executors.openrlhf.flags import check_supported, openrlhf_argv
from harness.executors.openrlhf.reward import write_reward_file

ENTRY = "openrlhf.cli.train_ppo_ray"
LAUNCHER = "harness.executors.openrlhf.launch"
HOOK = ("harness.executors.openrlhf.controller:SelbenchPPOTrainer, installed by the launcher as "
        "openrlhf.trainer.ppo_trainer.PPOTrainer: every prompt (dynamic-filtering refills "
        "included) comes from the selbench strategy")
# what a real launch needs besides selbench (the GPU side); --dry-run needs none of it
REQUIRED = {"openrlhf": "pip install -e '.[openrlhf]'", "ray": "pip install 'ray[default]'",
            "deepspeed": "pip install deepspeed", "vllm": "pip install vllm (CUDA)"}


class OpenRLHFUnavailable(RuntimeError):
    """This machine cannot start the OpenRLHF executor (no GPU or a missing package)."""


@dataclass
class LaunchPlan:
    run_dir: Path
    work_dir: Path
    config_file: Path
    reward_file: Path
    spec_file: Path
    model_path: str
    argv: list[str]

    @property
    def openrlhf_command(self) -> list[str]:
        return [sys.executable, "-m", ENTRY, *self.argv]

    @property
    def launch_command(self) -> list[str]:
        return [sys.executable, "-m", LAUNCHER, str(self.spec_file)]


def model_location(cfg: RunConfig, build: bool) -> str:
    """The folder (or Hugging Face name) OpenRLHF loads; ``build`` also makes sure it exists."""
    from harness.instrument import policy
    from harness.instrument.tasks.tables import local_path

    if build:
        return str(policy.build(cfg.model, progress=False))
    if cfg.model.kind == "hf":
        name = cfg.model.path
        local = name.startswith(("/", ".", "~")) or name.count("/") != 1
        return str(local_path(name)) if local else name
    from harness.runs.paths import cache_dir

    if cfg.model.kind == "smollm2":
        from harness.instrument.models.smollm2 import MODEL_NAME

        return str(cache_dir() / "models" / MODEL_NAME)
    return str(cache_dir() / "models" / policy.model_key(cfg.model))


def prepare(cfg: RunConfig, results_root: Path, build: bool = False) -> LaunchPlan:
    """Write the run folder's ``openrlhf/`` files and return the launch (nothing starts)."""
    check_supported(cfg)
    run_dir = Path(results_root).resolve() / "runs" / cfg.run_id()
    work_dir = run_dir / "openrlhf"
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / "config.yaml"
    config_file.write_text(dump(cfg), encoding="utf-8")
    model_path = model_location(cfg, build)
    reward_file = write_reward_file(work_dir / "reward_func.py", config_file, model_path)
    argv = openrlhf_argv(cfg, model_path, reward_file, work_dir)
    spec_file = work_dir / "launch.json"
    spec = {"run_dir": str(run_dir), "config": str(config_file), "argv": argv,
            "ray_address": cfg.executor.openrlhf.ray_address}
    spec_file.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return LaunchPlan(run_dir, work_dir, config_file, reward_file, spec_file, model_path, argv)


def format_plan(plan: LaunchPlan) -> str:
    """The launch as a person reads it: the full OpenRLHF command, the files, the hook."""
    flags = []
    i = 0
    while i < len(plan.argv):  # one flag and its values per line
        j = i + 1
        while j < len(plan.argv) and not plan.argv[j].startswith("--"):
            j += 1
        flags.append(" ".join(shlex.quote(a) for a in plan.argv[i:j]))
        i = j
    command = " \\\n    ".join([f"{shlex.quote(sys.executable)} -m {ENTRY}", *flags])
    return "\n".join([
        f"# OpenRLHF launch for run {plan.run_dir.name}",
        f"# run folder:       {plan.run_dir}",
        f"# reward function:  {plan.reward_file}  (selbench's verifier, OpenRLHF reward_func)",
        f"# prompt source:    {HOOK}",
        f"# launch spec:      {plan.spec_file}",
        "# start it (the launcher runs exactly the OpenRLHF command below, with the hook):",
        " ".join(shlex.quote(a) for a in plan.launch_command),
        "# the OpenRLHF invocation:",
        command,
    ])


def check_machine() -> None:
    """Raise :class:`OpenRLHFUnavailable` naming what is missing for a real launch."""
    missing = [f"{name} ({hint})" for name, hint in REQUIRED.items()
               if importlib.util.find_spec(name) is None]
    if missing:
        raise OpenRLHFUnavailable("the OpenRLHF executor needs " + "; ".join(missing)
                                  + " and CUDA GPUs; use --dry-run to see the launch")
    import torch

    if not torch.cuda.is_available():
        raise OpenRLHFUnavailable("the OpenRLHF executor needs CUDA GPUs (DeepSpeed actors); "
                                  "use --dry-run to see the launch, or the in-process executor")


def run(cfg: RunConfig, results_root: Path, dry_run: bool = False,
        progress: bool = True) -> tuple[Path, dict[str, Any] | None]:
    """Launch (or, with ``dry_run``, print) the OpenRLHF run of ``cfg``; returns (folder, summary).

    A finished run (``summary.json`` present) returns at once, as the in-process executor does;
    an unfinished one resumes from OpenRLHF's and selbench's checkpoints.
    """
    run_dir = Path(results_root).resolve() / "runs" / cfg.run_id()
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return run_dir, json.loads(summary_path.read_text())
    if dry_run:
        plan = prepare(cfg, results_root, build=False)
        print(format_plan(plan))
        return plan.run_dir, None
    check_machine()
    from harness.instrument.tasks import load_pool

    pool = load_pool(cfg.task, cfg.pair)  # missing data fails here, in a second, with the file
    from harness.predictor.resources import predictor_dir
    from harness.runs import fingerprint
    from harness.runs.provenance import git_commit
    from harness.runs.records import RunBusyError, folder_lock

    # one writer per run folder, as for the in-process executor (same lock file)
    with folder_lock(run_dir, RunBusyError.for_run(run_dir)):
        if summary_path.exists():
            return run_dir, json.loads(summary_path.read_text())
        data = fingerprint.fingerprint(cfg.task, pool, predictor_dir(cfg))
        fingerprint.check(run_dir, data)  # a resume on other data stops before the launch
        fingerprint.record(run_dir, data, git_commit())
        plan = prepare(cfg, results_root, build=True)
        if progress:
            print(format_plan(plan), file=sys.stderr)
        subprocess.run(plan.launch_command, check=True)
    return plan.run_dir, json.loads(summary_path.read_text())
