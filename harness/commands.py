"""What each ``selbench`` subcommand does (the parser and the error handling are
:mod:`harness.cli`). Torch-free at import: each command imports what it needs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.runs.folders import ensure_writable, refuse_file
from harness.runs.paths import CONFIG_DIR

if TYPE_CHECKING:
    from harness.config import ModelConfig


class UserError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


ARCHIVED_HEADER = "Archived (studies/)"


def _count(least: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``least`` (argparse names the flag)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}")
        return value
    return parse


def _pair_sections(archived: bool) -> list[tuple[str, list[str]]]:
    """(header, pair names) of `selbench list pairs`, in order: the CPU suite (from
    configs/suites/cpu.yaml), its real LLM, the paper's GPU pairs (model kind 'hf'), any other
    pair of configs/pairs, and with ``archived`` the retired pairs of studies/. Torch-free."""
    from harness.config import files as configfiles
    from harness.instrument import suite as suites

    live = configfiles.list_names("pairs", CONFIG_DIR)
    sections: list[tuple[str, list[str]]] = []
    listed: set[str] = set()
    if suites.suite_path("cpu").is_file():
        try:
            cpu = suites.load_suite("cpu")
        except suites.SuiteError as err:
            raise UserError(str(err)) from None
        frozen = f", frozen at {cpu.frozen_commit}" if cpu.frozen_commit else ""
        head = f"CPU suite ({len(cpu.pairs)} pairs{frozen})"
        sections.append((f"{head}: {cpu.description}" if cpu.description else head, cpu.pairs))
        sections.append(("Real LLM on CPU (too slow on a CPU to sweep)", cpu.real_llm))
        listed |= set(cpu.members)
    rest = [n for n in live if n not in listed]
    gpu = [n for n in rest if suites.pair_model_kind(n, CONFIG_DIR)[1] == "hf"]
    sections.append(("The paper's GPU pairs", gpu))
    sections.append(("Other pairs", [n for n in rest if n not in gpu]))
    if archived:
        sections.append((ARCHIVED_HEADER,
                         [n for n in configfiles.list_archived("pairs") if n not in live]))
    return sections


def _list_pairs(archived: bool) -> None:
    from harness.config import files as configfiles
    from harness.instrument import suite as suites

    blocks = []
    for header, names in _pair_sections(archived):
        if not names and not header.startswith("CPU suite"):
            continue
        lines = [header]
        for name in names:
            path = configfiles.find_named("pairs", name, CONFIG_DIR)
            description = configfiles.read_yaml(path).get("description", "") if path else ""
            model = suites.pair_model_kind(name, CONFIG_DIR)[0]
            lines.append(f"  {name:32s} {model:18s} {description}")
        if not names:
            lines.append("  (none listed yet in "
                         f"{suites.display_path(suites.suite_path('cpu'), CONFIG_DIR.parent)})")
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))


def _cmd_list(args: argparse.Namespace) -> None:
    from harness.config import files as configfiles

    if args.what == "pairs":
        _list_pairs(args.archived)
    elif args.what == "strategies":
        from strategies.registry import available, get_entry

        for name in available():
            print(f"{name:16s} {get_entry(name).description}")
    else:
        live = configfiles.list_names("models", CONFIG_DIR)
        for name in live:
            data = configfiles.read_yaml(CONFIG_DIR / "models" / f"{name}.yaml")
            print(f"{name:20s} {data.get('description', '')}")
        archived = {n: p for n, p in configfiles.archived_files("models").items() if n not in live}
        if args.archived and archived:
            print(f"\n{ARCHIVED_HEADER}")
            for name, path in archived.items():
                print(f"  {name:18s} {configfiles.read_yaml(path).get('description', '')}")


def _model_configs(names: list[str]) -> list[ModelConfig]:
    """Every named model's validated config, before torch loads: a typo stops at once."""
    from harness import config

    out: list[ModelConfig] = []
    for name in names:
        cfg = config.from_dict(config.ModelConfig, config.model_dict(name))
        cfg.validate("model")
        out.append(cfg)
    return out


def _cmd_models_build(args: argparse.Namespace) -> None:
    from harness import config

    names = config.list_names("models") if args.name == "all" else [args.name]
    cfgs = _model_configs(names)
    from harness.instrument import policy  # torch: only once every config is known to be valid

    for cfg in cfgs:
        print(policy.build(cfg, progress=not args.quiet))


def _cmd_models_ship(args: argparse.Namespace) -> None:
    (cfg,) = _model_configs([args.name])
    from harness.instrument import policy

    out = Path(args.out) if args.out else CONFIG_DIR / "models" / "weights" / args.name
    lines = policy.ship(cfg, out, progress=not args.quiet)
    print(f"shipped {args.name} into {out}; put these in configs/models/{args.name}.yaml:")
    for key, value in lines.items():
        print(f"{key}: {value}")


def _resolve(args: argparse.Namespace):
    from harness import config

    return config.resolve(args.pair, args.strategy, seed=args.seed, overrides=args.set,
                          steps=args.steps)


def _cmd_run(args: argparse.Namespace) -> None:
    from harness import executors

    if args.executor:
        args.set = [*args.set, f"executor.name={args.executor}"]  # the flag wins over --set
    cfg = _resolve(args)
    if not args.dry_run:
        ensure_writable(Path(args.results), "--results")
    run_dir, summary = executors.run(cfg, Path(args.results), progress=not args.quiet,
                                     dry_run=args.dry_run)
    if summary is None:  # a dry run printed the launch
        return
    print(f"accuracy {summary['initial_accuracy']:.3f} -> {summary['final_accuracy']:.3f} "
          f"in {summary['clock_s']:.1f} s on the clock ({summary['steps']} steps)", file=sys.stderr)
    print(run_dir)


def _cmd_config(args: argparse.Namespace) -> None:
    from harness.config import show as configshow

    print(configshow.render(_resolve(args)), end="")


def _cmd_probe(args: argparse.Namespace) -> None:
    cfg = _resolve(args)
    from harness.instrument import probe

    row = probe.probe(cfg, max_questions=args.questions, progress=not args.quiet)
    print(probe.format_row(row))


def _cmd_predictor_fit(args: argparse.Namespace) -> None:
    from harness.predictor import fit

    cfg = fit.resolve_config(args.pair, args.set)
    report = fit.fit(cfg, progress=not args.quiet,
                     log=None if args.quiet else lambda m: print(m, file=sys.stderr))
    print(fit.format_report(report))


def _cmd_report(args: argparse.Namespace) -> None:
    from harness.protocol import report

    try:
        targets = report.parse_targets(args.target)
        _, written = report.report(Path(args.results_dir), Path(args.out) if args.out else None,
                                   targets, reps=args.reps, seed=args.seed,
                                   calibration=Path(args.calibration) if args.calibration
                                   else None,
                                   claims_file=Path(args.claims) if args.claims else None,
                                   finished_only=args.finished_only,
                                   target_rise=args.target_rise)
    except report.ReportError as err:
        raise UserError(str(err)) from err
    print(written[0].parent)


def _cmd_pack(args: argparse.Namespace) -> None:
    from harness.protocol import pack

    try:
        res = pack.pack_results(Path(args.results_dir))
    except FileNotFoundError as err:
        raise UserError(str(err)) from err
    print(f"packed {res.packed} finished runs ({res.skipped_unfinished} unfinished left as they "
          f"are): {res.bytes_before / 1e6:.1f} MB -> {res.bytes_after / 1e6:.1f} MB")


def _cmd_recheck(args: argparse.Namespace) -> None:
    from harness.protocol import recheck

    try:
        checks, path = recheck.recheck(Path(args.results_dir), args.steps, args.run,
                                       Path(args.out) if args.out else None)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from err
    print(path)


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from harness.protocol import costclock

    try:
        cal = costclock.calibrate_folder(Path(args.results_dir), args.note, args.label)
    except ValueError as err:
        raise UserError(str(err)) from err
    print(cal.to_json())


def _cmd_sweep(args: argparse.Namespace) -> int:
    from harness.protocol import sweep, sweep_exec

    spec = sweep.load_spec(sweep.find_sweep_file(args.file))
    refuse_file(Path(args.results), "--results")  # the plan looks inside it
    plan = sweep.make_plan(spec, Path(args.results).resolve())  # validates every run first
    print(sweep.format_plan(plan, verbose=args.dry_run), file=sys.stderr)
    missing = sweep.missing_resources(plan)
    if missing and not args.dry_run and args.address is None:
        raise sweep.SweepError("\n".join(missing))
    for line in missing:  # a remote cluster's nodes may have what this machine lacks
        print(f"warning: {line}", file=sys.stderr)
    if args.dry_run:
        return 0
    # every run, and the sweep's own sweeps/NAME/ metadata, go in there; checked after the
    # validation so that a rejected sweep leaves no folder behind
    ensure_writable(Path(args.results), "--results")
    ensure_writable(Path(args.results) / "sweeps" / spec.name, "--results")
    sweep.write_metadata(plan)
    if plan.todo() and (args.executor == "local" or args.address is None):
        sweep_exec.prebuild_models(plan, progress=not args.quiet)
    executor = sweep_exec.make_executor(args.executor, plan, args.address, args.workers)
    print(f"executor: {args.executor}, up to {executor.slots()} runs at once", file=sys.stderr)
    outcomes = sweep_exec.schedule(plan, executor, skip_busy=args.skip_busy,
                                   progress=not args.quiet)
    print(sweep_exec.format_outcomes(plan, outcomes), file=sys.stderr)
    print(plan.meta_dir)
    return sweep_exec.exit_code(outcomes)


def _cmd_suite_check(args: argparse.Namespace) -> None:
    from harness import config
    from harness.instrument import suite

    pairs = args.pair or suite.load_suite(args.suite).pairs
    if not pairs:
        raise UserError(f"suite {args.suite!r} lists no pairs; give --pair NAME or a pair file")
    for pair in pairs:  # a bad pair stops here, at once: the criteria code imports pandas
        config.resolve(pair, "uniform")
    from harness.instrument import suite_check

    results = ensure_writable(Path(args.results), "--results").resolve()
    rows = suite_check.check(pairs, args.seeds, results, args.workers, progress=not args.quiet)
    out = suite_check.write(rows, results)
    print(out.read_text(), end="")
    print(out)
    if not args.pair:
        print(_freeze_status(suite.load_suite(args.suite)))


def _freeze_status(s) -> str:  # noqa: ANN001 (harness.instrument.suite.Suite; imported lazily)
    """One line: whether the suite is frozen and whether its files are as frozen."""
    from harness.instrument import suite

    if not s.frozen_commit:
        return f"suite {s.name}: not frozen (frozen_commit is null in {s.path.name})"
    try:
        changed = suite.frozen_changes(s)
    except suite.SuiteError as err:
        return f"suite {s.name}: frozen at {s.frozen_commit[:7]}; {err}"
    if not changed:
        return f"suite {s.name}: frozen at {s.frozen_commit[:7]}; its files are unchanged since"
    return (f"suite {s.name}: frozen at {s.frozen_commit[:7]}, but changed since: "
            f"{', '.join(changed)} (a changed suite is a new suite: give it its own suite file)")


def _cmd_demo(args: argparse.Namespace) -> None:
    from harness.protocol import demo

    demo.main(ensure_writable(Path(args.results), "--results"), quick=args.quick, with_replay=args.with_replay)
