"""A bound on how long one task may run (``[training] max_seconds``): :class:`Deadline`.

A thread cannot be stopped from outside, so a task that never returns (a ``build()`` stuck in
a loop, a hung device call) holds its worker for ever. The client therefore watches: each task
notes on its worker when it started (:func:`timed`); a task running past its limit has its
future cancelled and its worker restarted by the worker's nanny, which ends the thread with the
process, and the client records the task as failed with :class:`TaskTimeoutError`. A check between
epochs would keep the worker but stops nothing that hangs inside an epoch or in ``build()``;
a restart costs the worker a few seconds (its dataset is built again by its plugin), paid only
by a task that ran past its limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from distributed import Client, get_worker

logger = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

#: When each task running in this worker process started (seconds since the epoch), by key.
_STARTED: dict[str, float] = {}


class TaskTimeoutError(TimeoutError):
    """A task ran past its time limit: it was stopped and its worker restarted."""


def timed(func: Callable[[S], R], spec: S) -> R:
    """Run ``func(spec)`` on a worker, noting when it started for :func:`running_since`."""
    key = str(get_worker().get_current_task())
    _STARTED[key] = time.time()
    try:
        return func(spec)
    finally:
        _STARTED.pop(key, None)


def running_since() -> dict[str, float]:
    """The tasks running in this worker process and when each started (for ``client.run``)."""
    return dict(_STARTED)


class Deadline:
    """Finds the tasks running past ``max_seconds`` and stops them.

    Parameters
    ----------
    client : distributed.Client
    max_seconds : float
        How long one task may run on its worker (from its start there, not its submission:
        a task may wait behind another on a busy worker).
    """

    def __init__(self, client: Client, max_seconds: float) -> None:
        self.client = client
        self.max_seconds = max_seconds

    def overdue(self, submitted: dict[str, float]) -> dict[str, tuple[str, float]]:
        """Of the keys submitted at these times, those running past the limit.

        Returns ``{key: (worker address, seconds it has run)}``. The workers are asked only
        when a task was submitted longer ago than the limit, so a run whose tasks end in time
        pays nothing.
        """
        now = time.time()
        if not any(now - t > self.max_seconds for t in submitted.values()):
            return {}
        answers = self.client.run(running_since, on_error="return")
        found: dict[str, tuple[str, float]] = {}
        for worker, started in answers.items():
            if not isinstance(started, dict):  # a worker gone meanwhile
                continue
            for key, start in started.items():
                if key in submitted and now - start > self.max_seconds:
                    found[key] = (worker, now - start)
        return found

    def stop(self, futures: Iterable[Any], workers: Iterable[str]) -> None:
        """Cancel the futures, then restart their workers, which ends the threads running them."""
        self.client.cancel(list(futures))
        workers = sorted(set(workers))
        answers = self.client.restart_workers(workers, raise_for_error=False)
        for worker, answer in answers.items():
            if answer != "OK":
                logger.warning(
                    "worker %s could not be restarted (%s): it goes on running a task that "
                    "ran past [training] max_seconds",
                    worker,
                    answer,
                )
