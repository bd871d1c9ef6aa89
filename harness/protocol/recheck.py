"""Replay the first steps of committed runs with this checkout's code and compare the records.

A leaderboard fills over days, run by several commits (the report's provenance lists them).
Its runs compare only if those commits compute the same thing. This check takes one run per
recorded commit, reruns its first ``steps`` steps from its stored resolved config (same seed)
in a scratch folder with the code loaded now, and compares every deterministic counter (costs,
rewards, losses, gradient norms, selection statistics, held-out accuracy) with the committed
record. Wall-clock counters (``time/...``) are not compared.

Bit-identical agreement is expected only on the same kind of CPU with the run's thread count:
floating-point reductions differ between instruction sets, so on another machine read the size
of the differences, not their presence.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.runs.records import RunRecord, atomic_write

SKIPPED_PREFIXES = ("time/",)  # measured, not computed: they differ on every rerun


@dataclass(frozen=True)
class Difference:
    """What differs between a committed record and its replay over the same steps."""

    values: int  # (step, metric) values both logged, evaluations included
    different: int  # of those, values not equal bit for bit
    worst_metric: str = ""
    worst_step: int = 0
    worst_rel: float = 0.0  # largest |now - then| / max(|then|, 1e-12)
    differing: tuple[str, ...] = ()  # metrics with at least one differing value
    added: tuple[str, ...] = ()  # metrics only the replay logs (counters added since)
    dropped: tuple[str, ...] = ()  # metrics only the committed record has


@dataclass(frozen=True)
class Recheck:
    run_id: str
    commit: str  # the commit that ran the committed record
    code: str  # the commit that replayed it
    steps: int
    diff: Difference

    @property
    def identical(self) -> bool:
        d = self.diff
        return d.values > 0 and d.different == 0 and not d.dropped

    def verdict(self) -> str:
        d = self.diff
        if d.values == 0:
            return "nothing to compare"
        shown = ", ".join(d.differing[:4]) + (", ..." if len(d.differing) > 4 else "")
        text = ("bit-identical" if d.different == 0 else
                f"{d.different} of {d.values} values differ ({shown}); largest "
                f"{d.worst_rel:.2e} (relative) in {d.worst_metric} at step {d.worst_step}")
        if d.dropped:
            text += f"; no longer logged: {', '.join(d.dropped)}"
        if d.added:
            text += f"; logged since: {', '.join(d.added)}"
        return text


def _compared(name: str) -> bool:
    return not name.startswith(SKIPPED_PREFIXES)


def compare(then: Iterable[tuple[int, str, float]], now: Iterable[tuple[int, str, float]],
            steps: int) -> Difference:
    """Compare the values both records hold for steps 0..``steps`` (the replay's span). A
    metric only one side logs is listed, not counted as a difference: a counter added to the
    records since changes what is written, not what is computed."""
    old = {(s, m): v for s, m, v in then if s <= steps and _compared(m)}
    new = {(s, m): v for s, m, v in now if s <= steps and _compared(m)}
    old_names, new_names = {m for _, m in old}, {m for _, m in new}
    values = different = 0
    worst: tuple[float, str, int] = (-1.0, "", 0)
    differing: set[str] = set()
    for key in sorted(old.keys() & new.keys()):
        values += 1
        a, b = old[key], new[key]
        if a == b or (math.isnan(a) and math.isnan(b)):
            continue
        different += 1
        differing.add(key[1])
        rel = abs(b - a) / max(abs(a), 1e-12)
        if rel > worst[0]:
            worst = (rel, key[1], key[0])
    return Difference(values, different, worst[1], worst[2], max(worst[0], 0.0),
                      tuple(sorted(differing)), tuple(sorted(new_names - old_names)),
                      tuple(sorted(old_names - new_names)))


def _eval_rows(record: RunRecord) -> list[tuple[int, str, float]]:
    return [(int(r["step"]), "eval.csv accuracy", float(r["accuracy"])) for r in record.read_eval()]


def replay(run_dir: Path, steps: int, scratch: Path, progress: bool = False,
           code: str | None = None) -> Recheck:
    """Rerun the first ``steps`` steps of the committed run in ``run_dir`` inside ``scratch``
    and compare (a stored run id that its config no longer gives stops with ValueError).
    ``code``: the commit of the code loaded (default: the checkout's, read now)."""
    from harness import config
    from harness.executors.trainer import Trainer
    from harness.runs.provenance import git_commit

    committed = RunRecord(run_dir)
    cfg = config.load_resolved(committed.config_path)
    if cfg.run_id() != run_dir.name:
        raise ValueError(f"{run_dir}: its config.yaml gives run id {cfg.run_id()}: this code "
                         "resolves the stored config differently, so nothing it reruns compares")
    summary = json.loads(committed.summary_path.read_text())
    steps = min(steps, cfg.train.steps)
    # a run made with SELBENCH_COMPILE=1 is replayed compiled, an eager one eager
    trainer = Trainer(cfg, scratch / run_dir.name, progress=progress,
                      compiled=bool(summary.get("compiled")))
    trainer.run_until(steps)
    then = committed.read_metrics() + _eval_rows(committed)
    now = trainer.record.read_metrics() + _eval_rows(trainer.record)
    return Recheck(run_dir.name, str(summary.get("git_commit", "?")), code or git_commit(),
                   steps, compare(then, now, steps))


def pick_runs(results: Path) -> list[Path]:
    """One finished run per commit that ran the records, each of a strategy label not picked
    yet where the commit's runs allow (covering the strategies' own code too); deterministic."""
    by_commit: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted((results / "runs").glob("*/summary.json")):
        s = json.loads(path.read_text())
        by_commit.setdefault(str(s.get("git_commit", "?")), []).append((str(s["label"]), path.parent))
    picked: list[Path] = []
    labels: set[str] = set()
    # the commits with fewest runs choose first: they have the least choice
    for commit in sorted(by_commit, key=lambda c: (len(by_commit[c]), c)):
        runs = by_commit[commit]
        label, run = next(((lab, r) for lab, r in runs if lab not in labels), runs[0])
        labels.add(label)
        picked.append(run)
    return picked


def format_table(checks: Sequence[Recheck]) -> str:
    lines = [
        "# Recheck: committed runs replayed with one commit's code",
        "",
        f"Written by `selbench recheck`. Each row reran the first steps of one committed run "
        f"from its stored config and seed with the code of `{checks[0].code if checks else '?'}`"
        " and compared every computed per-step counter and evaluation (`time/...` excluded) "
        "with the committed record. Bit-identical agreement is expected on the machine kind "
        "that ran the records; elsewhere read the size of the differences.",
        "",
        "| run | ran by | steps | values compared | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in checks:
        lines.append(f"| {c.run_id} | `{c.commit}` | {c.steps} | {c.diff.values} | "
                     f"{c.verdict()} |")
    same = sum(c.identical for c in checks)
    lines += ["", f"{same} of {len(checks)} runs reproduced bit for bit."]
    return "\n".join(lines) + "\n"


def recheck(results: Path, steps: int, run_ids: Sequence[str] = (), out: Path | None = None,
            progress: bool = True) -> tuple[list[Recheck], Path]:
    """Replay the chosen runs (default :func:`pick_runs`), write the table; (checks, its path)."""
    runs_root = results / "runs"
    if run_ids:
        runs = [runs_root / r for r in run_ids]
        for r in runs:
            if not (r / "summary.json").exists():
                raise FileNotFoundError(f"{r}: no finished run there (see {runs_root})")
    else:
        runs = pick_runs(results)
        if not runs:
            raise FileNotFoundError(f"{runs_root}: no finished runs to recheck")
    from harness.runs.provenance import git_commit

    # read once, before the first run: edits to the tree while it replays do not change the
    # code this process has loaded (a checkout with untracked results reads "-dirty": recheck
    # from a clean worktree, as scripts/leaderboard.sh's PIN=1 runs the sweep)
    code = git_commit()
    checks: list[Recheck] = []
    with tempfile.TemporaryDirectory(prefix="selbench-recheck-") as tmp:
        for i, run in enumerate(runs, 1):
            check = replay(run, steps, Path(tmp), progress=False, code=code)
            checks.append(check)
            if progress:
                print(f"[{i}/{len(runs)}] {check.run_id} (ran by {check.commit}): "
                      f"{check.verdict()}", file=sys.stderr, flush=True)
    path = out or results / "recheck.md"
    atomic_write(path, format_table(checks))
    # beside the table, what the report's provenance reads (no torch there)
    atomic_write(path.with_suffix(".json"), json.dumps(to_json(checks), indent=1) + "\n")
    return checks, path


def to_json(checks: Sequence[Recheck]) -> dict[str, object]:
    return {"code": checks[0].code if checks else "",
            "runs": [{"run_id": c.run_id, "commit": c.commit, "steps": c.steps,
                      "values": c.diff.values, "identical": c.identical,
                      "worst_rel": c.diff.worst_rel, "verdict": c.verdict()}
                     for c in checks]}


def provenance_line(data: dict[str, object], commits: Collection[str]) -> str:
    """The report's one line on a recheck (``recheck.json``), naming recorded commits that
    no rechecked run covers (runs added since the recheck)."""
    runs = list(data.get("runs", []))  # type: ignore[call-overload]
    same = [r for r in runs if r["identical"]]
    line = (f"- recheck (`recheck.md`): {len(same)} of {len(runs)} runs, one per commit, "
            f"rerun for their first {max((r['steps'] for r in runs), default=0)} steps by "
            f"`{data.get('code', '?')}`, reproduce their records bit for bit")
    differ = [r["run_id"] for r in runs if not r["identical"]]
    if differ:
        line += "; not: " + ", ".join(f"`{r}`" for r in differ)
    missing = sorted(set(commits) - {r["commit"] for r in runs})
    if missing:
        line += "; commits not rechecked: " + ", ".join(f"`{c}`" for c in missing)
    return line
