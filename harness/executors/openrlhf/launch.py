"""``python -m harness.executors.openrlhf.launch SPEC``: OpenRLHF's GRPO with selbench's controller.

Runs OpenRLHF's own entry point ``openrlhf.cli.train_ppo_ray`` (its argument checks, its
``train()``: vLLM engines, DeepSpeed actors, weight sync) with the flags in ``SPEC`` (written by
:func:`harness.executors.openrlhf.prepare`), after putting
:class:`~harness.executors.openrlhf.controller.SelbenchPPOTrainer` in place of its
``PPOTrainer``: that is the prompt-source hook. Ray is initialised here, with the spec path in
every worker's environment, so the controller actor finds the run on any node of the cluster.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

ENTRY = "openrlhf.cli.train_ppo_ray"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.executors.openrlhf.launch RUN_DIR/openrlhf/launch.json",
              file=sys.stderr)
        return 2
    spec_path = Path(args[0]).resolve()
    spec = json.loads(spec_path.read_text())

    import ray
    from openrlhf.trainer import ppo_trainer

    from harness.executors.openrlhf.controller import SPEC_ENV, SelbenchPPOTrainer

    os.environ[SPEC_ENV] = str(spec_path)
    # the hook: OpenRLHF's train() imports PPOTrainer from this module when it starts
    ppo_trainer.PPOTrainer = SelbenchPPOTrainer
    env = {key: os.environ.get(key, default) for key, default in (
        ("TOKENIZERS_PARALLELISM", "true"), ("NCCL_DEBUG", "WARN"),
        ("RAY_ENABLE_ZERO_COPY_TORCH_TENSORS", "1"))}
    env[SPEC_ENV] = str(spec_path)
    ray.init(address=spec.get("ray_address"), runtime_env={"env_vars": env})
    sys.argv = [ENTRY, *spec["argv"]]
    runpy.run_module(ENTRY, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
