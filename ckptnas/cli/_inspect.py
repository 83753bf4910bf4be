"""``ckptnas lineage`` and ``ckptnas summary``: reading a run, without torch or Dask.

Both answer from the run's SQLite registry, so they work at once on a login node where torch
is not installed (``tests/test_layout.py`` checks it): nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.cli._summary import print_run_summary, print_summary
from ckptnas.errors import CkptnasError
from ckptnas.storage import LineageRegistry, RunDir, recorded_config

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``lineage`` and ``summary`` commands."""
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


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print the lineage tree, one candidate's ancestry or statistics, or export the graph."""
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
        window = args.window or recorded_config(RunDir(run_dir)).search.population_size
        print(format_lineage_stats(lineage, window))
    elif args.export:
        out = Path(args.output) if args.output else run_dir / f"lineage.{args.export}"
        print(f"wrote {export_lineage(lineage, out, args.export)}")
    else:
        print(format_lineage_tree(lineage))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print a run's headline numbers and its ``args.k`` best candidates."""
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
    print_run_summary(summary, metric, run_dir, args.k)
    return 0
