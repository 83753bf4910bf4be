"""Stopping a run from outside: SIGTERM (how Slurm and PBS end a job) handled like Ctrl-C."""

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


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    The previous handler is restored afterwards. Elsewhere than the main thread (where Python
    cannot install handlers) the block runs unchanged.

    Examples
    --------
    >>> with sigterm_as_interrupt():                       # doctest: +SKIP
    ...     Experiment(config, "runs/demo").run()
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
