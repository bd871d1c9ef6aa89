"""Executing a sweep plan: a local pool of child processes, or tasks on a Ray cluster.

Both executors run each run in a process of its own through :func:`harness.protocol.sweep_worker.run_one`
and share one scheduler: a bounded number of runs in flight, a progress bar over runs, failures
collected (one failing run never stops the others), runs that another process is writing
deferred to the end and waited for (or skipped with ``skip_busy``). Interrupting the sweep
(Ctrl-C, SIGTERM, SIGKILL) stops its runs; every run keeps its records and checkpoint, so the
same command resumes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from harness.protocol import sweepcost
from harness.protocol.sweep import BUSY, Plan, PlannedRun, SweepError, logged_step
from harness.protocol.sweep_worker import BUSY_EXIT
from harness.runs.paths import PROJECT_ROOT
from harness.runs.progress import _fmt_s
from harness.runs.progress import bar as progress_bar

FAILED, DONE, INTERRUPTED = "failed", "done", "interrupted"


@dataclass
class Outcome:
    run: PlannedRun
    status: str  # DONE, FAILED, BUSY (skipped) or INTERRUPTED
    message: str = ""


class Executor(Protocol):
    def slots(self) -> int: ...
    def start(self, run: PlannedRun, wait: bool) -> None: ...
    def poll(self, timeout: float) -> list[tuple[PlannedRun, str, str]]: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------- local child processes


def die_with_parent() -> None:
    # Linux: a child gets SIGTERM when the sweep dies, even by SIGKILL, instead of running on
    # orphaned (its records stay resumable either way)
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _last_line(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@dataclass
class _Child:
    run: PlannedRun
    proc: subprocess.Popen[bytes]
    log: Path
    offset: int
    handle: IO[bytes]


class LocalExecutor:
    """Each run is ``python -m harness.protocol.sweep_worker`` in a child process; ``workers`` at once."""

    def __init__(self, results_root: Path, log_dir: Path, workers: int) -> None:
        self.results_root = results_root
        self.log_dir = log_dir
        self.workers = workers
        self.children: list[_Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def slots(self) -> int:
        return self.workers

    def start(self, run: PlannedRun, wait: bool) -> None:
        log = self.log_dir / f"{run.run_id}.log"
        handle = open(log, "ab")  # noqa: SIM115 (closed when the child is reaped)
        offset = handle.tell()
        cmd = [sys.executable, "-m", "harness.protocol.sweep_worker", "--results",
               str(self.results_root), "--run-id", run.run_id] + (["--wait"] if wait else [])
        # the child runs in our working directory (relative data paths in configs stay valid)
        # and finds the harness even when selbench is not installed
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                        env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=handle,
                                stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(run.cfg.to_dict()).encode())
        proc.stdin.close()
        self.children.append(_Child(run, proc, log, offset, handle))

    def poll(self, timeout: float) -> list[tuple[PlannedRun, str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            done = [c for c in self.children if c.proc.poll() is not None]
            if done or time.monotonic() >= deadline:
                break
            time.sleep(min(0.2, timeout))
        out = []
        for child in done:
            self.children.remove(child)
            child.handle.close()
            code = child.proc.returncode
            if code == 0:
                out.append((child.run, DONE, ""))
            elif code == BUSY_EXIT:
                out.append((child.run, BUSY, ""))
            else:
                why = (f"killed by {signal.Signals(-code).name}" if code < 0
                       else f"exit code {code}")
                last = _last_line(child.log, child.offset)
                out.append((child.run, FAILED, f"{last} ({why}; log: {child.log})"))
        return out

    def active(self) -> list[PlannedRun]:
        return [c.run for c in self.children]

    def stop(self) -> None:
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                child.proc.terminate()
        for child in self.children:
            try:
                child.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()

    def close(self) -> None:
        for child in self.children:
            child.handle.close()
        self.children = []


# ---------------------------------------------------------------- Ray


class RayExecutor:
    """Each run is a Ray task (``num_cpus`` = its ``train.threads``, at least 1) calling
    :func:`harness.protocol.sweep_worker.run_one` on whichever node Ray picks; the results folder must be
    a path every node sees (a shared filesystem)."""

    def __init__(self, results_root: Path, address: str | None, workers: int | None,
                 threads: int) -> None:
        if address is None or address.split(":")[0] in ("127.0.0.1", "localhost"):
            # a cluster of this machine only: Ray then uses the loopback address for its node
            # too (a driver on the machine's public IP would wait for a node of that IP that
            # never comes); read when ray is imported
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise SweepError("the ray executor needs Ray: pip install 'selbench[ray]' "
                             "(or use --executor local)") from None
        self.ray = ray
        self.results_root = results_root
        self.threads = max(1, threads)
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if address is None:
            kwargs["include_dashboard"] = False
            # a local cluster just for this sweep; a small object store is plenty, the tasks
            # pass only configs and summaries
            kwargs["object_store_memory"] = 200 * 1024 * 1024
            if workers:
                kwargs["num_cpus"] = workers * self.threads
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as err:
            raise SweepError(f"could not connect to the Ray cluster at {address} ({err}); check "
                             "the address, and with token authentication (Ray's default for "
                             "clusters started by ray.init) run the sweep with "
                             "RAY_AUTH_MODE=token") from None
        from harness.protocol.sweep_worker import run_one

        # no retries: a run that died mid-way is reported; the next sweep resumes it
        self.task = ray.remote(max_retries=0)(run_one)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.n_slots = workers or max(1, cpus // self.threads)
        self.pending: dict[Any, PlannedRun] = {}

    def slots(self) -> int:
        return self.n_slots

    def start(self, run: PlannedRun, wait: bool) -> None:
        ref = self.task.options(num_cpus=max(1, run.cfg.train.threads)).remote(
            run.cfg.to_dict(), str(self.results_root), run.run_id, wait)
        self.pending[ref] = run

    def poll(self, timeout: float) -> list[tuple[PlannedRun, str, str]]:
        ray = self.ray
        if not self.pending:
            return []
        ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
        out = []
        for ref in ready:
            run = self.pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None) or err
                lines = [ln for ln in str(cause).splitlines() if ln.strip()]
                out.append((run, FAILED, f"{type(cause).__name__}: {lines[-1] if lines else ''}"))
                continue
            except ray.exceptions.RayError as err:
                out.append((run, FAILED, f"{type(err).__name__}: {str(err).splitlines()[0]}"))
                continue
            out.append((run, BUSY if outcome["status"] == "busy" else DONE, ""))
        return out

    def active(self) -> list[PlannedRun]:
        return list(self.pending.values())

    def stop(self) -> None:
        for ref in list(self.pending):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        self.pending = {}
        self.ray.shutdown()


# ---------------------------------------------------------------- the scheduler


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the sweep like Ctrl-C does: runs stopped, records kept."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _postfix(plan: Plan, runs: list[PlannedRun], failed: int, queued: list[PlannedRun],
             rate: dict[str, float], slots: int) -> str:
    logged = {r.run_id: logged_step(plan.results_root / "runs" / r.run_id) for r in runs}
    parts = [f"{r.short} {logged[r.run_id]}/{r.steps}" for r in runs[:3]]
    if len(runs) > 3:
        parts.append(f"+{len(runs) - 3} more")
    if failed:
        parts.append(f"{failed} failed")
    # the bar's own estimate counts runs, whose costs differ several-fold between strategies;
    # this one prices each run's steps left at the measured rate of finished runs like it
    steps_left = {r.run_id: r.steps - r.steps_logged for r in queued}
    steps_left.update({r.run_id: r.steps - logged[r.run_id] for r in runs})
    hours = sweepcost.hours_left(rate, steps_left, slots) if rate else None
    if hours is not None:
        parts.append(f"~{_fmt_s(hours * 3600)} left at the finished runs' rates")
    return ", ".join(parts)


def schedule(plan: Plan, executor: Any, skip_busy: bool = False, progress: bool = True,
             poll_s: float = 1.0) -> list[Outcome]:
    """Run every unfinished run of ``plan``; returns one outcome per run attempted."""
    todo = plan.todo()
    outcomes: list[Outcome] = []
    # runs another process is writing go last, and then wait for it, unless skipped
    queue: deque[tuple[PlannedRun, bool]] = deque((r, False) for r in todo if r.state != BUSY)
    for run in todo:
        if run.state == BUSY:
            if skip_busy:
                outcomes.append(Outcome(run, BUSY, "another process is writing it"))
            else:
                queue.append((run, True))
    rate = sweepcost.prices(plan)[0] if progress else {}
    bar = progress_bar(len(todo), initial=len(outcomes), unit="run", disable=not progress,
                       desc=f"sweep {plan.spec.name}", dynamic_ncols=True)
    failed = 0
    shown = ""
    with _sigterm_as_interrupt():
        try:
            while queue or executor.active():
                while queue and len(executor.active()) < executor.slots():
                    run, wait = queue.popleft()
                    executor.start(run, wait)
                for run, status, message in executor.poll(poll_s):
                    if status == BUSY and not skip_busy:
                        queue.append((run, True))  # retried last, waiting for the writer
                        continue
                    if status == BUSY:
                        message = "another process is writing it"
                    failed += status == FAILED
                    outcomes.append(Outcome(run, status, message))
                    bar.update(1)
                postfix = _postfix(plan, executor.active(), failed, [r for r, _ in queue],
                                   rate, executor.slots())
                if progress and postfix != shown:  # redraw only when a run moved
                    bar.set_postfix_str(shown := postfix)
        except KeyboardInterrupt:
            stopped = executor.active()
            executor.stop()
            outcomes.extend(Outcome(r, INTERRUPTED, "stopped") for r in stopped)
        finally:
            bar.close()
            executor.close()
    return outcomes


def format_outcomes(plan: Plan, outcomes: list[Outcome]) -> str:
    by = {s: [o for o in outcomes if o.status == s] for s in (DONE, FAILED, BUSY, INTERRUPTED)}
    lines = [f"sweep {plan.spec.name}: {len(plan.runs)} runs: "
             f"{plan.counts['finished']} finished before, {len(by[DONE])} finished now, "
             f"{len(by[FAILED])} failed, {len(by[BUSY])} skipped (busy), "
             f"{len(by[INTERRUPTED])} interrupted"]
    for status in (FAILED, BUSY):
        for o in by[status]:
            lines.append(f"  {status}: {o.run.run_id}: {o.message}")
    if by[INTERRUPTED]:
        lines.append("  interrupted: rerun the same command to resume from the checkpoints")
    if by[DONE]:
        from harness.protocol.sweepcost import phase_shares

        shares = phase_shares([plan.results_root / "runs" / o.run.run_id for o in by[DONE]])
        if shares:
            lines.append("  " + shares)
    return "\n".join(lines)


def make_executor(kind: str, plan: Plan, address: str | None, workers: int | None) -> Any:
    from harness.protocol.sweep import default_workers

    if kind == "local":
        if address is not None:
            raise SweepError("--address is for --executor ray; the local executor runs here")
        return LocalExecutor(plan.results_root, plan.meta_dir / "logs",
                             workers or default_workers(plan.runs))
    if kind == "ray":
        threads = max((r.cfg.train.threads for r in plan.runs), default=1)
        return RayExecutor(plan.results_root, address, workers, threads)
    raise SweepError(f"unknown executor '{kind}': use local or ray")


def exit_code(outcomes: list[Outcome]) -> int:
    if any(o.status == INTERRUPTED for o in outcomes):
        return 130
    return 1 if any(o.status in (FAILED, BUSY) for o in outcomes) else 0


def prebuild_models(plan: Plan, progress: bool = True) -> None:
    """Build each missing model once before the runs start: otherwise every run that needs it
    would build its own copy at the same time (the builds are atomic, but minutes each)."""
    from harness.instrument import policy

    seen: set[str] = set()
    for run in plan.todo():
        key = policy.model_key(run.cfg.model)
        if key in seen:
            continue
        seen.add(key)
        if not policy.is_built(run.cfg.model):
            print(f"building model {run.cfg.model.name} (once, before the runs)", file=sys.stderr)
            policy.build(run.cfg.model, progress=progress)
