"""``ckptnas compare`` and ``ckptnas report``: figures, tables and pages written to files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.cli._summary import print_summary
from ckptnas.storage import RunDir

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``compare`` and ``report`` commands."""
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


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare searches against ``args.control``; print the table, list the files written."""
    from ckptnas.analysis import compare_runs

    comparison = compare_runs(args.run_dirs, args.out, control=args.control)
    print(comparison.table)
    print("\nwrote " + ", ".join(str(f) for f in comparison.files))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one run's figures (or its HTML page) and print its summary."""
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
