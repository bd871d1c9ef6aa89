"""One run of a sweep, in the process that executes it (a local child process or a Ray worker).

The run arrives as its fully resolved config (a dict), not as pair/strategy names, so a worker
needs no ``configs/`` tree and runs exactly what the sweep validated; the expected run id guards
that the round trip changed nothing.

As a program (the local executor's child): ``python -m harness.protocol.sweep_worker --results DIR
--run-id ID [--wait] < config.json``; exit code 0 = finished, :data:`BUSY_EXIT` = another process
holds the run, anything else = failed (traceback on stderr).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import socket
import sys
from pathlib import Path
from typing import Any

BUSY_EXIT = 75  # EX_TEMPFAIL: try again later


def _wait_for_writer(run_dir: Path) -> None:
    """Block until no process holds the run's writer lock (the lock itself is taken by the
    trainer; if another process grabs it first we come back here)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fcntl.flock(fh, fcntl.LOCK_UN)


def run_one(cfg_dict: dict[str, Any], results_root: str, run_id: str,
            wait: bool = False) -> dict[str, Any]:
    """Run (resume, or find finished) one run; ``{"status": "finished"|"busy", ...}``."""
    from harness import config, executors
    from harness.executors import trainer

    cfg: config.RunConfig = config.from_dict(config.RunConfig, cfg_dict)
    cfg.validate()
    if cfg.run_id() != run_id:
        raise RuntimeError(f"the config arrived as run {cfg.run_id()}, expected {run_id}: "
                           "selbench versions differ between the sweep and this worker")
    root = Path(results_root)
    while True:
        if wait:
            _wait_for_writer(root / "runs" / run_id)
        try:
            run_dir, summary = executors.run(cfg, root, progress=False)
        except trainer.RunBusyError:
            if wait:
                continue
            return {"status": "busy", "run_id": run_id}
        return {"status": "finished", "run_id": run_id, "run_dir": str(run_dir),
                "final_accuracy": summary["final_accuracy"], "clock_s": summary["clock_s"],
                "host": socket.gethostname()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.protocol.sweep_worker", description=__doc__)
    ap.add_argument("--results", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--wait", action="store_true", help="wait for another writer of the run")
    args = ap.parse_args(argv)
    outcome = run_one(json.load(sys.stdin), args.results, args.run_id, wait=args.wait)
    print(json.dumps(outcome), flush=True)
    return BUSY_EXIT if outcome["status"] == "busy" else 0


if __name__ == "__main__":
    raise SystemExit(main())
