"""``ckptnas run`` and ``ckptnas resume``: a search, started or continued."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.cli._common import add_cluster_flags, add_trust_flag, apply_flags
from ckptnas.cli._summary import print_summary
from ckptnas.config import Config, load_config
from ckptnas.storage import RunDir, recorded_config

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers
    from ckptnas.runtime import RunListener


def register(sub: Subparsers) -> None:
    """Add the ``run`` and ``resume`` commands."""
    run = sub.add_parser("run", help="run a search from a TOML configuration")
    run.add_argument("config", help="the experiment's TOML file")
    run.add_argument("--out", help="run directory (default: [experiment] out, or runs/<name>)")
    add_cluster_flags(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped run")
    resume.add_argument("run_dir")
    add_cluster_flags(resume)
    add_trust_flag(resume)
    resume.set_defaults(func=cmd_resume)


def default_run_dir(config: Config) -> Path:
    """``[experiment] out``, or ``runs/<name>`` when it is empty."""
    return Path(config.experiment.out or Path("runs") / config.experiment.name)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the search of ``args.config``; print its summary."""
    from ckptnas.runtime import Experiment

    config = apply_flags(load_config(args.config), args)
    run_dir = Path(args.out) if args.out else default_run_dir(config)
    args.stopping_run = run_dir  # named in the message if the run is interrupted
    experiment = Experiment(
        config, run_dir, progress=not args.no_progress, listeners=_listeners(config, run_dir)
    )
    ds = experiment.run()
    print_summary(ds, run_dir)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue the search of ``args.run_dir`` with its recorded configuration."""
    from ckptnas.runtime import Experiment

    run_dir = Path(args.run_dir)
    RunDir(run_dir).require_writable()  # before reading: a read-only open leaves -shm files
    config = apply_flags(recorded_config(RunDir(run_dir)), args)
    args.stopping_run = run_dir
    experiment = Experiment(
        config,
        run_dir,
        progress=not args.no_progress,
        resume=True,
        listeners=_listeners(config, run_dir),
        trust_code=args.trust_code,
    )
    ds = experiment.run()
    if experiment.already_finished:
        print(
            f"{run_dir} is finished: {ds.sizes['candidate']} candidates, its whole budget; "
            "nothing to resume (--max-candidates N extends it)\n"
        )
    print_summary(ds, run_dir)
    return 0


def _listeners(config: Config, run_dir: Path) -> list[RunListener]:
    """The listeners of ``run`` and ``resume``: the live ``report.html``, and ``[tracking]``'s.

    ``report.html`` is kept up to date as results come; MLflow and TensorBoard log the run
    where ``[tracking]`` says (nothing by default). Where to watch the run is printed on
    standard output, before the progress bar appears (on standard error); standard error keeps
    its one line when the run fails. A tracking library that is not installed stops the
    command here, before anything runs.
    """
    from ckptnas.analysis import LiveReport
    from ckptnas.tracking import tracking_listeners

    return [LiveReport(run_dir, notice=sys.stdout), *tracking_listeners(config)]
