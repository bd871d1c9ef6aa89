"""``selbench``: list pairs and strategies, build models, run, probe, demo."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from harness.commands import (  # noqa: F401 (UserError: raised by harness.protocol.demo too)
    UserError,
    _cmd_calibrate,
    _cmd_config,
    _cmd_demo,
    _cmd_list,
    _cmd_models_build,
    _cmd_models_ship,
    _cmd_pack,
    _cmd_predictor_fit,
    _cmd_probe,
    _cmd_recheck,
    _cmd_report,
    _cmd_run,
    _cmd_suite_check,
    _cmd_sweep,
    _count,
)
from harness.config.base import ConfigError
from harness.runs.folders import FolderError
from harness.runs.paths import results_dir


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
    rep.add_argument("--target-rise", type=float, default=1.0, metavar="FRAC",
                     help="targets at FRAC of uniform's median rise from step 0 to its final "
                          "(default 1: the final; a sensitivity check, e.g. 0.9)")
    rep.add_argument("--reps", type=_count(1), default=2000, help="bootstrap resamples")
    rep.add_argument("--seed", type=_count(0), default=0, help="bootstrap seed")
    rep.add_argument("--calibration", default=None, metavar="PATH",
                     help="cost-clock unit costs (default RESULTS_DIR/calibration.json; without "
                     "one they are fitted on the reported records)")
    rep.add_argument("--claims", default=None, metavar="PATH",
                     help="published claims to check (default configs/claims.yaml)")
    rep.add_argument("--finished-only", action="store_true",
                     help="say nothing of unfinished runs (a snapshot to commit while a sweep runs)")
    rep.set_defaults(func=_cmd_report)

    pk = sub.add_parser("pack", help="pack finished runs under RESULTS_DIR/runs for committing "
                        "(gzip metrics.csv, drop checkpoints); reports and sweeps read them as is")
    pk.add_argument("results_dir", metavar="RESULTS_DIR")
    pk.set_defaults(func=_cmd_pack)

    rc = sub.add_parser("recheck", help="rerun the first steps of one committed run per recorded "
                        "commit with this code and compare the records (writes RESULTS_DIR/"
                        "recheck.md)")
    rc.add_argument("results_dir", metavar="RESULTS_DIR")
    rc.add_argument("--steps", type=_count(1), default=10, help="steps to replay per run")
    rc.add_argument("--run", action="append", default=[], metavar="RUN_ID",
                    help="recheck this run instead of one per commit (repeatable)")
    rc.add_argument("--out", default=None, help="the table (default RESULTS_DIR/recheck.md)")
    rc.set_defaults(func=_cmd_recheck)

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
    from harness.runs.fingerprint import DataChangedError
    from harness.runs.records import RecordWriteError
    from strategies.registry import UnknownStrategyError

    # every error class comes from a torch-free module: a config error must print at once,
    # not after the seconds torch and transformers take to import
    errors: tuple[type[BaseException], ...] = (ConfigError, UnknownStrategyError, UserError,
                                               FileNotFoundError, FolderError, RecordWriteError,
                                               DataChangedError)
    if args.command in ("run", "demo", "probe"):
        from harness.runs.records import RunBusyError

        errors += (RunBusyError,)
    if args.command == "run":
        from harness.executors.openrlhf import OpenRLHFUnavailable

        errors += (OpenRLHFUnavailable,)
    if args.command == "predictor":
        from harness.predictor.fit import FitBusyError

        errors += (FitBusyError,)
    if args.command in ("sweep", "suite"):  # `suite check` plans its runs as a sweep
        from harness.protocol.sweep import SweepError

        errors += (SweepError,)
    try:
        rc = args.func(args)
    except errors as err:
        print(f"selbench: error: {err}", file=sys.stderr)
        return 2
    return rc or 0


if __name__ == "__main__":
    raise SystemExit(main())
