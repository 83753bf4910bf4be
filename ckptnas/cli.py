"""The ``ckptnas`` command line.

Errors a user can cause (a bad config, a busy run directory, ...) print one line naming the
problem and exit with status 2; nothing in an existing run directory is changed by them.
Commands that only read a run (``summary``, ``lineage``) import neither torch nor Dask, so
they answer at once on a login node.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import shlex
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas._version import package_version
from ckptnas.config import Config, load_config
from ckptnas.errors import CkptnasError, ClusterError
from ckptnas.runtime._signals import Terminated, sigterm_as_interrupt
from ckptnas.storage import (
    INITS,
    CandidateStatus,
    LineageRegistry,
    RunDir,
    RunKind,
    checkpoint_usage,
)

if TYPE_CHECKING:
    import xarray as xr

    from ckptnas.analysis import RunSummary
    from ckptnas.runtime import RunListener


def _apply_flags(config: Config, args: argparse.Namespace) -> Config:
    """The configuration with the command line's --max-candidates, --scheduler, --workers."""
    if getattr(args, "max_candidates", None):  # train-topk has no such flag
        config = config.replace("experiment", max_candidates=args.max_candidates)
    if getattr(args, "local", False) or args.scheduler == "":  # the embedded cluster
        config = config.replace("cluster", kind="local", scheduler="", jobqueue={})
    elif args.scheduler is not None:
        config = config.replace("cluster", kind="address", scheduler=args.scheduler, jobqueue={})
    if args.workers:
        config = config.replace("cluster", n_workers=args.workers)
    return config


def default_run_dir(config: Config) -> Path:
    """``[experiment] out``, or ``runs/<name>`` when it is empty."""
    return Path(config.experiment.out or Path("runs") / config.experiment.name)


def cmd_run(args: argparse.Namespace) -> int:
    from ckptnas.runtime import Experiment

    config = _apply_flags(load_config(args.config), args)
    run_dir = Path(args.out) if args.out else default_run_dir(config)
    args.stopping_run = run_dir  # named in the message if the run is interrupted
    experiment = Experiment(
        config, run_dir, progress=not args.no_progress, listeners=_live_report(run_dir)
    )
    ds = experiment.run()
    print_summary(ds, run_dir)
    _refuse_all_failed(ds)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from ckptnas.runtime import Experiment

    run_dir = Path(args.run_dir)
    RunDir(run_dir).require_writable()  # before reading: a read-only open leaves -shm files
    config = _apply_flags(RunDir(run_dir).recorded_config(), args)
    args.stopping_run = run_dir
    experiment = Experiment(
        config,
        run_dir,
        progress=not args.no_progress,
        resume=True,
        listeners=_live_report(run_dir),
    )
    ds = experiment.run()
    if experiment.already_finished:
        print(
            f"{run_dir} is finished: {ds.sizes['candidate']} candidates, its whole budget; "
            "nothing to resume (--max-candidates N extends it)\n"
        )
    print_summary(ds, run_dir)
    _refuse_all_failed(ds)
    return 0


def _live_report(run_dir: Path) -> list[RunListener]:
    """The listener of ``run`` and ``resume``: ``report.html`` kept up to date as results come.

    Where to watch the run is printed on standard output, before the progress bar appears (on
    standard error); standard error keeps its one line when the run fails.
    """
    from ckptnas.analysis import LiveReport

    return [LiveReport(run_dir, notice=sys.stdout)]


def _refuse_all_failed(ds: xr.Dataset) -> None:
    """A run whose candidates all failed ends in error, with the first failure's reason."""
    failed = ds.status.values != CandidateStatus.OK
    if ds.sizes["candidate"] and failed.all():
        first = int(ds.candidate.values[0])
        raise CkptnasError(
            f"every candidate failed ({failed.size} of {failed.size}); candidate {first}: "
            f"{ds.error.values[0]}"
        )


def print_summary(ds: xr.Dataset, run_dir: Path, k: int = 5) -> None:
    """Print a run's headline numbers and its best candidates, from its results dataset."""
    from ckptnas.analysis import RunSummary

    _print_summary(RunSummary.from_dataset(ds), ds.attrs.get("metric", "metric"), run_dir, k)


class _NoValue:
    """An undefined number (no warm candidate, say): printed as "none", never as "nan"."""

    def __format__(self, spec: str) -> str:
        return "none"


def _number(x: float) -> float | _NoValue:
    return _NoValue() if isinstance(x, float) and math.isnan(x) else x


def _print_summary(summary: RunSummary, metric: str, run_dir: Path, k: int) -> None:
    s = {k: _number(v) for k, v in summary.headline().items()}
    print(f"run directory: {run_dir}")
    print(
        f"candidates: {s['n_candidates']} ({s['n_ok']} ok), warm-started: "
        f"{s['warm_share']:.0%}, mean fraction of parameters transferred (warm): "
        f"{s['mean_frac_params_transferred']:.2f}"
    )
    print(
        f"mean first-epoch validation {metric}: warm {s['first_epoch_metric_warm']:.4f}, "
        f"scratch {s['first_epoch_metric_scratch']:.4f}"
    )
    usage = checkpoint_usage(run_dir)
    if usage.n_checkpoints:
        print(usage.describe())
    top = summary.top(k)
    print(f"\ntop {len(top)} candidates by validation {metric}:")
    print(f"{'id':>5} {'objective':>10} {'parent':>6} {'transferred':>11} {'params':>9}")
    for i in top:
        parent = int(summary.parent[i])
        print(
            f"{int(summary.id[i]):>5} {float(summary.objective[i]):>10.4f} "
            f"{parent if parent >= 0 else '-':>6} "
            f"{float(summary.frac_params_transferred[i]):>10.0%} {int(summary.n_params[i]):>9}"
        )


def cmd_lineage(args: argparse.Namespace) -> int:
    from ckptnas.analysis import (
        Lineage,
        export_lineage,
        format_ancestry,
        format_lineage_stats,
        format_lineage_tree,
    )

    run_dir = Path(args.run_dir)
    RunDir(run_dir).require_search()
    lineage = Lineage.from_run(run_dir)
    if args.candidate is not None:
        if args.candidate not in lineage.records:
            raise CkptnasError(f"run {str(run_dir)!r} has no candidate {args.candidate}")
        print(format_ancestry(lineage, args.candidate))
    elif args.stats:
        window = args.window or RunDir(run_dir).recorded_config().search.population_size
        print(format_lineage_stats(lineage, window))
    elif args.export:
        out = Path(args.output) if args.output else run_dir / f"lineage.{args.export}"
        print(f"wrote {export_lineage(lineage, out, args.export)}")
    else:
        print(format_lineage_tree(lineage))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ckptnas.analysis import RunSummary

    run_dir = Path(args.run_dir)
    if not RunDir(run_dir).lineage.is_file():  # results copied without their registry
        from ckptnas.storage import load_results

        print_summary(load_results(run_dir), run_dir, k=args.k)
        return 0
    # The registry answers without xarray, and is never behind results.nc during a run.
    with LineageRegistry(run_dir, readonly=True) as registry:
        summary = RunSummary.from_registry(registry)
        metric = registry.get_meta("metric") or "metric"
    _print_summary(summary, metric, run_dir, args.k)
    return 0


def cmd_train_topk(args: argparse.Namespace) -> int:
    from ckptnas.storage import MISSING, Init
    from ckptnas.topk import TopKSettings, train_topk

    run_dir = Path(args.run_dir)
    files = RunDir(run_dir)
    config = _apply_flags(files.recorded_config(), args)
    settings = TopKSettings(
        k=args.k, max_epochs=args.epochs, patience=args.patience, min_delta=args.min_delta
    )
    inits = INITS if args.init == "both" else (Init(args.init),)
    ds = train_topk(run_dir, settings, inits, config=config, progress=not args.no_progress)
    metric = ds.attrs.get("metric", "metric")
    print(f"wrote {files.topk_results}")
    print(f"{'rank':>4} {'cand':>5} {'init':>10} {'epochs':>6} {metric:>8} {'t_target':>9}")
    for rank in ds["rank"].values:
        row = ds.sel(rank=rank)
        for init in ds.init.values:
            if row.status.sel(init=init) == MISSING:
                continue
            cell = row.sel(init=init)
            print(
                f"{int(rank):>4} {int(row.candidate):>5} {init:>10} {int(cell.n_epochs):>6} "
                f"{float(cell.final_metric):>8.4f} {float(cell.time_to_target):>8.1f}s"
            )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ckptnas.runtime import predict_file

    out = Path(args.out) if args.out else Path(args.data).with_suffix(".predictions.nc")
    ds = predict_file(args.run_dir, args.candidate, args.data, out)
    print(f"wrote {out}: {ds.sizes[next(iter(ds.dims))]} predictions of candidate {args.candidate}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ckptnas.runtime import export_model

    exported = export_model(args.run_dir, args.candidate, args.format, args.out)
    print(f"wrote {exported.model_file} and {exported.description_file}")
    return 0


def cmd_cluster_script(args: argparse.Namespace) -> int:
    from ckptnas.runtime import CLUSTERS
    from ckptnas.runtime._cluster_kinds import batch_words

    config = load_config(args.config)
    kind = CLUSTERS.get(config.cluster.kind)
    if not getattr(kind, "batch", False):
        raise CkptnasError(
            f"{args.config}: [cluster] kind = {config.cluster.kind!r} starts no batch jobs; "
            f"cluster-script is for kind = {batch_words()}"
        )
    print(kind.job_script(config))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ckptnas.analysis import compare_runs

    comparison = compare_runs(args.run_dirs, args.out, control=args.control)
    print(comparison.table)
    print("\nwrote " + ", ".join(str(f) for f in comparison.files))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ckptnas.analysis import report_run, write_html_report
    from ckptnas.storage import load_results

    if args.html:
        page = Path(args.out) / RunDir(args.run_dir).report.name if args.out else None
        files = [write_html_report(args.run_dir, page)]
    else:
        files = report_run(args.run_dir, args.out)
    print_summary(load_results(args.run_dir), Path(args.run_dir), k=args.k)
    print("\nwrote " + ", ".join(str(f) for f in files))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``ckptnas`` command."""
    parser = argparse.ArgumentParser(
        prog="ckptnas",
        description="Neural architecture search on Dask with warm-started candidates.",
    )
    parser.add_argument("--version", action="version", version=f"ckptnas {package_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show what the run does (cluster changes), not only warnings",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def cluster_args(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group()
        where.add_argument("--scheduler", help="address of an existing Dask scheduler")
        where.add_argument(
            "--local",
            action="store_true",
            help="use the embedded LocalCluster, whatever scheduler the run recorded",
        )
        p.add_argument("--workers", type=int, help="workers of the embedded LocalCluster")
        p.add_argument("--max-candidates", type=int, help="total candidates of the search")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    run = sub.add_parser("run", help="run a search from a TOML configuration")
    run.add_argument("config", help="the experiment's TOML file")
    run.add_argument("--out", help="run directory (default: [experiment] out, or runs/<name>)")
    cluster_args(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped run")
    resume.add_argument("run_dir")
    cluster_args(resume)
    resume.set_defaults(func=cmd_resume)

    lineage = sub.add_parser("lineage", help="print who inherited from whom")
    lineage.add_argument("run_dir")
    what = lineage.add_mutually_exclusive_group()
    what.add_argument(
        "--candidate", type=int, help="this candidate's ancestry and what each step inherited"
    )
    what.add_argument(
        "--stats", action="store_true", help="depth distribution and donor popularity"
    )
    what.add_argument(
        "--export", choices=("graphml", "dot"), help="write the lineage as a graph file"
    )
    lineage.add_argument(
        "--window",
        type=int,
        help="candidates per sliding window of --stats (default: [search] population_size)",
    )
    lineage.add_argument("--output", help="file of --export (default: RUN_DIR/lineage.FORMAT)")
    lineage.set_defaults(func=cmd_lineage)

    summary = sub.add_parser("summary", help="print a run's headline numbers and best candidates")
    summary.add_argument("run_dir")
    summary.add_argument("-k", type=int, default=5, help="how many candidates to list")
    summary.set_defaults(func=cmd_summary)
    _add_analysis_parsers(sub, cluster_args)
    return parser


def _add_analysis_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    cluster_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``train-topk``, ``compare`` and ``report`` commands."""
    topk = sub.add_parser("train-topk", help="fully train a search's best candidates")
    topk.add_argument("run_dir")
    topk.add_argument("-k", type=int, default=5, help="how many of the best candidates")
    topk.add_argument("--epochs", type=int, default=50, help="epochs at most per run")
    topk.add_argument(
        "--init",
        choices=(*INITS, "both"),
        default="both",
        help="random weights, the search's checkpoint weights, or both (paired)",
    )
    topk.add_argument("--patience", type=int, default=5, help="early-stopping patience")
    topk.add_argument(
        "--min-delta", type=float, default=0.0, help="smallest validation-loss improvement"
    )
    cluster_args(topk)
    topk.set_defaults(func=cmd_train_topk)

    predict = sub.add_parser("predict", help="a trained candidate's predictions for a netCDF file")
    predict.add_argument("run_dir")
    predict.add_argument("data", help="netCDF file with the run's input variables, raw")
    predict.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    predict.add_argument("--out", help="output file (default: DATA.predictions.nc)")
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser(
        "export", help="write a trained candidate as a model file other programs load"
    )
    export.add_argument("run_dir")
    export.add_argument("--candidate", type=int, required=True, help="the candidate's id")
    export.add_argument(
        "--format",
        choices=["torch-export", "onnx", "safetensors"],
        default="torch-export",
        help="torch.export program (.pt2), ONNX graph, or tensors for ckptnas.load_exported",
    )
    export.add_argument("--out", help="output folder (default: RUN_DIR/export)")
    export.set_defaults(func=cmd_export)

    script = sub.add_parser(
        "cluster-script", help="print the batch job script of each worker ([cluster] kind)"
    )
    script.add_argument("config", help="the experiment's TOML file")
    script.set_defaults(func=cmd_cluster_script)

    compare = sub.add_parser("compare", help="compare searches: table, tests and figures")
    compare.add_argument("run_dirs", nargs="+", help="run directories (one per policy and seed)")
    compare.add_argument("--out", default="comparison", help="where comparison.nc and PNGs go")
    compare.add_argument("--control", default="none", help="the policy others are tested against")
    compare.set_defaults(func=cmd_compare)

    report = sub.add_parser("report", help="write one run's figures and print its top candidates")
    report.add_argument("run_dir")
    report.add_argument(
        "--html",
        action="store_true",
        help="write one interactive page, report.html, instead of PNG files",
    )
    report.add_argument(
        "--out",
        help="where the files go (default: RUN_DIR/figures, and RUN_DIR for --html)",
    )
    report.add_argument("-k", type=int, default=5, help="how many candidates to list")
    report.set_defaults(func=cmd_report)


@contextlib.contextmanager
def _showing_logs(level: int) -> Iterator[None]:
    """Print ckptnas's log records of ``level`` and above on stderr while the command runs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ckptnas: %(levelname)s: %(message)s"))
    package = logging.getLogger("ckptnas")
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ckptnas`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    for name in ("workers", "max_candidates", "window"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"ckptnas: error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    try:
        with (
            sigterm_as_interrupt(),
            _showing_logs(logging.INFO if args.verbose else logging.WARNING),
        ):
            return func(args)
    except ClusterError as exc:  # the run stopped part-way: say how to go on
        where = " --local (or --scheduler ADDR)"
        print(f"ckptnas: error: {exc}; {_what_remains(args, where)}", file=sys.stderr)
        return 2
    except CkptnasError as exc:
        print(f"ckptnas: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # the file system: a full disk, a missing file
        print(f"ckptnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"ckptnas: {what}; {_what_remains(args)}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def _what_remains(args: argparse.Namespace, flags: str = "") -> str:
    """After an interruption: how to continue the run (with ``flags``), or that it never began."""
    run_dir: Path | None = getattr(args, "stopping_run", None)
    if run_dir is None:
        return "stopped"
    if RunDir(run_dir).kind() not in (RunKind.SEARCH, RunKind.STARTED):
        return "stopped before the run began; nothing was written"
    return (
        "what was recorded is kept; continue with: "
        f"ckptnas resume {shlex.quote(str(run_dir))}{flags}"
    )
