"""Stopping a run from outside: Ctrl-C, and SIGTERM (how Slurm and PBS end a job) alike.

Python raises :class:`KeyboardInterrupt` wherever the main thread happens to be when the signal
arrives. Where that is a finalizer (a ``__del__``, a weakref callback: Dask's futures release
their keys in one as they are collected), Python prints "Exception ignored" and the run goes
on as if nothing had happened. So the handlers installed here also *note* the signal, and the
loop asks :func:`raise_if_interrupted` while it waits for results (every 0.1 s at most): a stop
that was swallowed is raised again there.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM.

    A subclass of :class:`KeyboardInterrupt`, so every clean-up path of a run (cancel what is
    in flight, write ``results.nc``, close the cluster) treats it exactly like Ctrl-C.
    """


#: The signals received while handlers of this module were installed, not yet acted upon.
_noted: list[int] = []
#: How many :func:`interrupts_deferred` blocks the main thread is in.
_deferring = [0]


def _interrupt(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGTERM:
        return Terminated(f"signal {signal.Signals(signum).name}")
    return KeyboardInterrupt()


def _note_and_raise(signum: int, frame: FrameType | None) -> None:
    _noted.append(signum)
    if not _deferring[0]:
        raise _interrupt(signum)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A stop that arrives inside the block is raised when the block ends, not in it.

    For the client's short critical sections: a write of ``results.nc`` (xarray holds a
    process-wide netCDF lock, and an interrupt between its acquire and its ``with`` left it
    held, so the stopping run's own last write waited on it for ever) and a registry batch
    (an interrupt inside a statement left it open, and the next write failed with "database
    table is locked").
    """
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    if not _deferring[0]:
        raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Raise the interrupt of a signal that arrived and was swallowed where it was raised."""
    if _noted:
        raise _interrupt(_noted.pop())


@contextlib.contextmanager
def interrupts_noted() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise and are noted for :func:`raise_if_interrupted`.

    SIGTERM raises :class:`Terminated`, SIGINT :class:`KeyboardInterrupt`. The previous
    handlers are restored afterwards. Elsewhere than the main thread (where Python cannot
    install handlers) the block runs unchanged.

    Examples
    --------
    >>> with interrupts_noted():                           # doctest: +SKIP
    ...     Experiment(config, "runs/demo").run()
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _note_and_raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _noted.clear()  # acted upon, or the block ended: a later block starts clean


@contextlib.contextmanager
def handlers_kept() -> Iterator[None]:
    """The SIGINT and SIGTERM handlers are as they were after the block, whatever it imports.

    ``import dask_jobqueue`` replaces the process's SIGINT handler with ``sys.exit()`` (its
    ``runner`` module does so at import, dask-jobqueue 0.9): a Ctrl-C after a batch cluster
    started then ended ckptnas with ``SystemExit``, exit status 0 and no word of what was kept.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


#: The earlier name of :func:`interrupts_noted`, which handled SIGTERM alone.
sigterm_as_interrupt = interrupts_noted
