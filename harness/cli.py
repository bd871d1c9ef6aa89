"""``selbench``: list pairs and strategies, build models, run, probe, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from harness.configbase import ConfigError
from harness.folders import FolderError, ensure_writable, refuse_file
from harness.paths import CONFIG_DIR, results_dir

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
    from harness import configfiles
    from harness import suite as suites

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
    from harness import configfiles
    from harness import suite as suites

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
    from harness import configfiles

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
    from harness import policy  # torch: only once every config is known to be valid

    for cfg in cfgs:
        print(policy.build(cfg, progress=not args.quiet))


def _cmd_models_ship(args: argparse.Namespace) -> None:
    (cfg,) = _model_configs([args.name])
    from harness import policy

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
    from harness import configshow

    print(configshow.render(_resolve(args)), end="")


def _cmd_probe(args: argparse.Namespace) -> None:
    cfg = _resolve(args)
    from harness import probe

    row = probe.probe(cfg, max_questions=args.questions, progress=not args.quiet)
    print(probe.format_row(row))


def _cmd_predictor_fit(args: argparse.Namespace) -> None:
    from harness.predictor import fit

    cfg = fit.resolve_config(args.pair, args.set)
    report = fit.fit(cfg, progress=not args.quiet,
                     log=None if args.quiet else lambda m: print(m, file=sys.stderr))
    print(fit.format_report(report))


def _cmd_report(args: argparse.Namespace) -> None:
    from harness import report

    try:
        targets = report.parse_targets(args.target)
        _, written = report.report(Path(args.results_dir), Path(args.out) if args.out else None,
                                   targets, reps=args.reps, seed=args.seed,
                                   calibration=Path(args.calibration) if args.calibration
                                   else None,
                                   claims_file=Path(args.claims) if args.claims else None)
    except report.ReportError as err:
        raise UserError(str(err)) from err
    print(written[0].parent)


def _cmd_pack(args: argparse.Namespace) -> None:
    from harness import pack

    try:
        res = pack.pack_results(Path(args.results_dir))
    except FileNotFoundError as err:
        raise UserError(str(err)) from err
    print(f"packed {res.packed} finished runs ({res.skipped_unfinished} unfinished left as they "
          f"are): {res.bytes_before / 1e6:.1f} MB -> {res.bytes_after / 1e6:.1f} MB")


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from harness import costclock

    try:
        cal = costclock.calibrate_folder(Path(args.results_dir), args.note, args.label)
    except ValueError as err:
        raise UserError(str(err)) from err
    print(cal.to_json())


def _cmd_sweep(args: argparse.Namespace) -> int:
    from harness import sweep, sweep_exec

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
    from harness import config, suite

    pairs = args.pair or suite.load_suite(args.suite).pairs
    if not pairs:
        raise UserError(f"suite {args.suite!r} lists no pairs; give --pair NAME or a pair file")
    for pair in pairs:  # a bad pair stops here, at once: the criteria code imports pandas
        config.resolve(pair, "uniform")
    from harness import suite_check

    results = ensure_writable(Path(args.results), "--results").resolve()
    rows = suite_check.check(pairs, args.seeds, results, args.workers, progress=not args.quiet)
    out = suite_check.write(rows, results)
    print(out.read_text(), end="")
    print(out)
    if not args.pair:
        print(_freeze_status(suite.load_suite(args.suite)))


def _freeze_status(s) -> str:  # noqa: ANN001 (harness.suite.Suite; imported lazily)
    """One line: whether the suite is frozen and whether its files are as frozen."""
    from harness import suite

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
    from harness import demo

    demo.main(ensure_writable(Path(args.results), "--results"), quick=args.quick, with_replay=args.with_replay)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other selbench error (the usage block
    it prints first buries the reason); subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="selbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list pairs, strategies or models")
    ls.add_argument("what", choices=["pairs", "strategies", "models"])
    ls.add_argument("--archived", action="store_true",
                    help="pairs and models: also the retired ones archived under studies/")
    ls.set_defaults(func=_cmd_list)

    models = sub.add_parser("models", help="build models")
    msub = models.add_subparsers(dest="action", required=True)
    mb = msub.add_parser("build", help="build (warm-start) a model and cache it; NAME or 'all'")
    mb.add_argument("name")
    mb.add_argument("--quiet", action="store_true")
    mb.set_defaults(func=_cmd_models_build)
    ms = msub.add_parser("ship", help="build a tiny model and copy it into the project as shipped "
                         "weights (prints the weights/weights_sha256 lines for its config)")
    ms.add_argument("name")
    ms.add_argument("--out", default=None, help="folder (default configs/models/weights/NAME)")
    ms.add_argument("--quiet", action="store_true")
    ms.set_defaults(func=_cmd_models_ship)

    def run_args(sp: argparse.ArgumentParser, strategy_required: bool) -> None:
        sp.add_argument("--pair", required=True, help="see `selbench list pairs`")
        sp.add_argument("--strategy", required=strategy_required, default=None,
                        help="see `selbench list strategies`")
        sp.add_argument("--seed", type=_count(0), default=0)
        sp.add_argument("--steps", type=_count(1), default=None, help="override train.steps")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set train.lr=1e-4 (repeatable)")
        sp.add_argument("--results", default=str(results_dir()), help="results folder")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")

    run = sub.add_parser("run", help="run one GRPO run; prints the run folder")
    run_args(run, strategy_required=True)
    run.add_argument("--executor", choices=["inprocess", "openrlhf"], default=None,
                     help="what runs the loop (default: the pair's executor.name)")
    run.add_argument("--dry-run", action="store_true",
                     help="OpenRLHF: print the full launch (command, reward file, prompt hook) "
                     "without starting it")
    run.set_defaults(func=_cmd_run)

    cf = sub.add_parser("config", help="print a run's resolved config, every field with its help "
                        "(as YAML; the run id on top)")
    cf.add_argument("pair", help="a pair name (`selbench list pairs`) or a pair file's path")
    cf.add_argument("--strategy", default=None, help="see `selbench list strategies`")
    cf.add_argument("--seed", type=_count(0), default=0)
    cf.add_argument("--steps", type=_count(1), default=None, help="override train.steps")
    cf.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set train.lr=1e-4 (repeatable)")
    cf.set_defaults(func=_cmd_config)

    pr = sub.add_parser("probe", help="pass-rate spread of the base policy on a pair's pool")
    run_args(pr, strategy_required=False)
    pr.add_argument("--questions", type=_count(1), default=512, help="pool questions to roll out")
    pr.set_defaults(func=_cmd_probe)

    pred = sub.add_parser("predictor", help="the DOTS difficulty predictor")
    psub = pred.add_subparsers(dest="action", required=True)
    pf = psub.add_parser("fit", help="label pool questions under several policies of a pair, "
                         "train the predictor, save its artifact")
    pf.add_argument("--pair", required=True, help="see `selbench list pairs`")
    pf.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set predictor.embedder=sentence_transformer")
    pf.add_argument("--quiet", action="store_true", help="no progress bar or epoch log")
    pf.set_defaults(func=_cmd_predictor_fit)

    rep = sub.add_parser("report", help="figures, leaderboard and tables from the run records "
                         "under RESULTS_DIR/runs; prints the report folder")
    rep.add_argument("results_dir", metavar="RESULTS_DIR")
    rep.add_argument("--out", default=None, help="report folder (default RESULTS_DIR/report)")
    rep.add_argument("--target", action="extend", nargs="+", default=[], metavar="PAIR=VALUE",
                     help="fixed target accuracy for a pair instead of uniform's final")
    rep.add_argument("--reps", type=_count(1), default=2000, help="bootstrap resamples")
    rep.add_argument("--seed", type=_count(0), default=0, help="bootstrap seed")
    rep.add_argument("--calibration", default=None, metavar="PATH",
                     help="cost-clock unit costs (default RESULTS_DIR/calibration.json; without "
                     "one they are fitted on the reported records)")
    rep.add_argument("--claims", default=None, metavar="PATH",
                     help="published claims to check (default configs/claims.yaml)")
    rep.set_defaults(func=_cmd_report)

    pk = sub.add_parser("pack", help="pack finished runs under RESULTS_DIR/runs for committing "
                        "(gzip metrics.csv, drop checkpoints); reports and sweeps read them as is")
    pk.add_argument("results_dir", metavar="RESULTS_DIR")
    pk.set_defaults(func=_cmd_pack)

    cal = sub.add_parser("calibrate", help="fit the cost clock's per-unit costs on the finished "
                         "runs under RESULTS_DIR/runs (made on a quiet machine) and write "
                         "RESULTS_DIR/calibration.json")
    cal.add_argument("results_dir", metavar="RESULTS_DIR")
    cal.add_argument("--label", action="append", default=[],
                     help="only runs of this strategy label (repeatable)")
    cal.add_argument("--note", default="",
                     help="how the runs were made, e.g. 'quiet 16-core machine, one run at a time'")
    cal.set_defaults(func=_cmd_calibrate)

    sw = sub.add_parser("sweep", help="run every pair x strategy x seed of a sweep file "
                        "(skips finished runs, resumes interrupted ones)")
    sw.add_argument("file", help="a sweep file's path (e.g. studies/dots-b32/dots-b32.yaml), "
                    "or NAME for configs/sweeps/NAME.yaml")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local: child processes here; ray: Ray tasks (pip install 'selbench[ray]')")
    sw.add_argument("--address", default=None,
                    help="Ray cluster address (default: start a local one)")
    sw.add_argument("--workers", type=_count(1), default=None,
                    help="runs at once (default: cores // train.threads; 1 if train.threads=0)")
    sw.add_argument("--results", default=str(results_dir()),
                    help="results folder (with Ray: a path every node shares)")
    sw.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    sw.add_argument("--skip-busy", action="store_true",
                    help="skip runs another process is writing instead of waiting for them")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    su = sub.add_parser("suite", help="the CPU suite: check its pairs against the regime criteria")
    susub = su.add_subparsers(dest="action", required=True)
    sc = susub.add_parser("check", help="probe each pair and run uniform on several seeds, then "
                          "print the criteria table (resumable; only uniform runs)")
    sc.add_argument("--suite", default="cpu", help="suite file configs/suites/NAME.yaml")
    sc.add_argument("--pair", action="append", default=None,
                    help="check this pair (a name or a pair .yaml file) instead of the suite's; "
                    "repeatable")
    sc.add_argument("--seeds", type=_count(0), nargs="+", default=[0, 1, 2])
    sc.add_argument("--results", default=str(results_dir() / "suite-check"))
    sc.add_argument("--workers", type=_count(1), default=None,
                    help="runs at once (default: cores)")
    sc.add_argument("--quiet", action="store_true")
    sc.set_defaults(func=_cmd_suite_check)

    demo = sub.add_parser("demo", help="the CPU demo comparison")
    demo.add_argument("--results", default=str(results_dir() / "demo"))
    demo.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    demo.add_argument("--with-replay", action="store_true",
                      help="also run DOTS with rollout replay (two more runs)")
    demo.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from harness.fingerprint import DataChangedError
    from harness.records import RecordWriteError
    from strategies.registry import UnknownStrategyError

    # every error class comes from a torch-free module: a config error must print at once,
    # not after the seconds torch and transformers take to import
    errors: tuple[type[BaseException], ...] = (ConfigError, UnknownStrategyError, UserError,
                                               FileNotFoundError, FolderError, RecordWriteError,
                                               DataChangedError)
    if args.command in ("run", "demo", "probe"):
        from harness.records import RunBusyError

        errors += (RunBusyError,)
    if args.command == "run":
        from harness.executors.openrlhf import OpenRLHFUnavailable

        errors += (OpenRLHFUnavailable,)
    if args.command == "predictor":
        from harness.predictor.fit import FitBusyError

        errors += (FitBusyError,)
    if args.command in ("sweep", "suite"):  # `suite check` plans its runs as a sweep
        from harness.sweep import SweepError

        errors += (SweepError,)
    try:
        rc = args.func(args)
    except errors as err:
        print(f"selbench: error: {err}", file=sys.stderr)
        return 2
    return rc or 0


if __name__ == "__main__":
    raise SystemExit(main())
