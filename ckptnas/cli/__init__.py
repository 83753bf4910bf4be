"""The ``ckptnas`` command line.

Errors a user can cause (a bad config, a busy run directory, ...) print one line naming the
problem and exit with status 2; nothing in an existing run directory is changed by them.
Commands that only read a run (``summary``, ``lineage``) import neither torch nor Dask, so
they answer at once on a login node.

Each command group is a module of this package with a ``register(subparsers)`` function that
adds its commands and sets each one's handler; :data:`COMMAND_GROUPS` lists them. A new group
is one module and one line there.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ckptnas._version import package_version
from ckptnas.cli._common import add_verbose_flag, bad_count, error, run_handler

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

#: The modules of the command groups, in the order ``ckptnas --help`` lists their commands.
COMMAND_GROUPS: tuple[str, ...] = (
    "ckptnas.cli._search",  # run, resume
    "ckptnas.cli._inspect",  # lineage, summary
    "ckptnas.cli._topk",  # train-topk
    "ckptnas.cli._model",  # predict, evaluate, export
    "ckptnas.cli._cluster",  # cluster-script
    "ckptnas.cli._report",  # compare, report
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``ckptnas`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each command's parsed arguments carry its handler as ``func``.

    Examples
    --------
    >>> args = build_parser().parse_args(["summary", "runs/demo"])
    >>> args.func.__name__, args.k
    ('cmd_summary', 5)
    """
    parser = argparse.ArgumentParser(
        prog="ckptnas",
        description="Neural architecture search on Dask with warm-started candidates.",
    )
    parser.add_argument("--version", action="version", version=f"ckptnas {package_version()}")
    add_verbose_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ckptnas`` console script; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``ckptnas``; default: the process's own (``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 after an error the user can fix (printed as one line on standard
        error), 128 plus the signal's number after Ctrl-C or SIGTERM.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse fills an optional positional (evaluate's DATA.nc) only where it stands
        # before the options (fixed in Python 3.13); a command that has one reads its own
        # arguments again, in any order.
        reread = getattr(args, "reread", None)
        if reread is None:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args = reread(argv[argv.index(args.command) + 1 :], namespace=args)
    problem = bad_count(args)
    if problem is not None:
        return error(problem)
    return run_handler(args)
