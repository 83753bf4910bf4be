"""What every command shares: the common flags, one-line errors, exit codes and logging.

A handler takes the parsed arguments and returns the exit status; errors a user can cause are
raised as :class:`~ckptnas.errors.CkptnasError` and turned into one line on standard error by
:func:`run_handler`, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import shlex
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ckptnas.errors import CkptnasError, ClusterError
from ckptnas.runtime._signals import Terminated, interrupts_noted
from ckptnas.storage import RunDir, RunKind

if TYPE_CHECKING:
    from ckptnas.config import Config

    #: What a command group's ``register`` adds its commands to.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

#: A command: the parsed arguments in, the exit status out.
Handler: TypeAlias = Callable[[argparse.Namespace], int]

#: The exit status of an error the user can fix (a bad config, a busy run directory, ...).
EXIT_ERROR = 2

#: The errors of a write that the disk refused (full, a quota, a file-size limit, read-only,
#: no permission) or failed (EIO): the run stops, and resumes once that is put right.
_WRITE_REFUSED = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EIO}
)

#: Flags that count something, refused below 1 before any command runs.
_COUNTS = ("workers", "max_candidates", "window")


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """The ``-v``/``--verbose`` flag: log records of level INFO too, not only warnings."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show what the run does (cluster changes), not only warnings",
    )


def add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """``--trust-code``: the one way a command is allowed to unpickle a run's own space object."""
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="load the run's search space even where it is a pickle of user code (running "
        "that code): only for a run directory you trust",
    )


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of commands that train: where the cluster is, its workers, the budget."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of an existing Dask scheduler")
    where.add_argument(
        "--local",
        action="store_true",
        help="use the embedded LocalCluster, whatever scheduler the run recorded",
    )
    parser.add_argument("--workers", type=int, help="workers of the embedded LocalCluster")
    parser.add_argument("--max-candidates", type=int, help="total candidates of the search")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def apply_flags(config: Config, args: argparse.Namespace) -> Config:
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


def error(message: str) -> int:
    """Print ``message`` as the one line of a failed command; return its exit status."""
    print(f"ckptnas: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def bad_count(args: argparse.Namespace) -> str | None:
    """The complaint about the first count flag below 1, or None when all are fine."""
    for name in _COUNTS:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1"
    return None


def run_handler(args: argparse.Namespace) -> int:
    """Run the command's handler; what it raises becomes one line and an exit status."""
    func: Handler = args.func
    try:
        with (
            interrupts_noted(),
            _showing_logs(logging.INFO if args.verbose else logging.WARNING),
        ):
            return func(args)
    except ClusterError as exc:  # the run stopped part-way: say how to go on
        return error(f"{exc}; {_what_remains(args, ' --local (or --scheduler ADDR)')}")
    except (CkptnasError, OSError, sqlite3.Error) as exc:  # OSError: a full disk, a lost file
        return error(_one_line(exc, args))
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"ckptnas: {what}; {_what_remains(args)}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def _one_line(exc: Exception, args: argparse.Namespace) -> str:
    """The error's line; after a write the disk refused, with how to go on once it is put right."""
    refused = next(
        (e for e in (exc, exc.__cause__) if isinstance(e, OSError) and e.errno in _WRITE_REFUSED),
        None,
    )
    if refused is None or getattr(args, "stopping_run", None) is None:
        return str(exc)
    if refused is exc and exc.filename:
        return f"cannot write {exc.filename}: {exc.strerror}; {_what_remains(args)}"
    return f"{exc}; {_what_remains(args)}"


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
