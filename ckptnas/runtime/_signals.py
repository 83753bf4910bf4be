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


def _interrupt(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGTERM:
        return Terminated(f"signal {signal.Signals(signum).name}")
    return KeyboardInterrupt()


def _note_and_raise(signum: int, frame: FrameType | None) -> None:
    _noted.append(signum)
    raise _interrupt(signum)


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


#: The earlier name of :func:`interrupts_noted`, which handled SIGTERM alone.
sigterm_as_interrupt = interrupts_noted
