"""The one way ckptnas hands work to Dask: a bounded window of tasks, outcomes as they finish.

Both the search loop and top-K full training submit through :class:`Submitter`. It keeps about
twice as many tasks in flight as there are workers (measured: with 2 workers, 2 tasks in flight
left each 50 ms task paying 16 ms of scheduler round trip, 4 hid it), submits lazily as tasks
finish rather than the whole batch at once (a task that asks for resources is assigned to a
worker at once, and every task assigned to a worker that dies counts as failed), and asks for a
GPU per task when the workers have GPUs.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

from distributed import Client, Future, as_completed
from distributed.comm.core import CommClosedError

from ckptnas.errors import ClusterError

logger = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

#: Seconds between two looks at the cluster's workers (see :meth:`Submitter.look_at_cluster`).
_CLUSTER_LOOK_INTERVAL = 1.0
#: Seconds that tasks may wait with no worker able to take them before the run says so.
NO_WORKER_WARNING = 30.0


@dataclass(frozen=True)
class Outcome(Generic[S, R]):
    """How one submitted task ended: its result, or the exception it raised."""

    spec: S
    attempt: int
    result: R | None
    error: BaseException | None

    @property
    def error_text(self) -> str:
        """The exception as one line of at most 2,000 characters, for a record."""
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"[:2000]


class Submitter(Generic[S, R]):
    """Run ``func(spec)`` on a Dask cluster for many specs, a window of them at a time.

    Parameters
    ----------
    client : distributed.Client
    func : callable
        What a worker runs for each spec.
    name : callable
        A spec's task name prefix (``candidate-17``); a unique suffix is added.
    window : int
        Tasks in flight at most; 0 keeps twice as many as there are workers.
    retries : int
        Dask's own retries of a task that raised.
    """

    def __init__(
        self,
        client: Client,
        func: Callable[[S], R],
        name: Callable[[S], str],
        window: int = 0,
        retries: int = 0,
    ) -> None:
        self.client = client
        self.func = func
        self.name = name
        self.fixed_window = window
        self.retries = retries
        # Not with_results=True: it fetched results sooner but gained nothing measurable with
        # 600 instant tasks (74 and 75 candidates/s), and a future cancelled with a reason that
        # is not asyncio's CancelledError then never comes out of the queue: the run waits for
        # ever (distributed 2026.8, Future._result asserts on the reason).
        self.queue: as_completed = as_completed()
        self.in_flight: dict[Future[R], tuple[S, int]] = {}
        self.n_workers = 0
        self.resources: dict[str, float] | None = None
        self.window = max(1, window)
        self._looked_at = -math.inf
        #: Workers that can take a task with :attr:`resources`.
        self.n_capable = 0
        self._stalled_since: float | None = None

    def look_at_cluster(self) -> None:
        """Size the window and the resource request from the workers there now.

        An adaptive cluster may grow or shrink, so this is asked again, but at most every
        :data:`_CLUSTER_LOOK_INTERVAL` seconds: each answer is a round trip to the scheduler
        that lists every worker. Asked after every candidate, it took the client as long as
        submitting the candidate did (3 ms each on the quickstart).
        """
        now = time.monotonic()
        if now - self._looked_at < _CLUSTER_LOOK_INTERVAL:
            return
        self._looked_at = now
        workers = list(self.client.scheduler_info()["workers"].values())
        if len(workers) != self.n_workers:
            logger.info("the cluster has %d workers (had %d)", len(workers), self.n_workers)
        self.n_workers = len(workers)
        # A worker started with --resources GPU=0 (a CPU node of a mixed cluster) has no GPU.
        gpus = [w for w in workers if w.get("resources", {}).get("GPU", 0) > 0]
        self.resources = {"GPU": 1} if gpus else None
        self.n_capable = len(gpus) if gpus else len(workers)
        self.window = self.fixed_window or 2 * max(1, len(workers))
        self._say_if_stalled(now)

    def _say_if_stalled(self, now: float) -> None:
        """Warn once when tasks have waited :data:`NO_WORKER_WARNING` s for a worker to take them.

        Dask keeps such tasks waiting without a word, which is right for a cluster that is
        still starting its workers (a batch queue), but not for one that never will.
        """
        if not self.in_flight or self.n_capable:
            self._stalled_since = None
            return
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= NO_WORKER_WARNING and math.isfinite(self._stalled_since):
            what = (
                "the cluster has no workers"
                if not self.n_workers
                else f"none of its {self.n_workers} workers has the resources they ask for "
                f"({self.resources})"
            )
            logger.warning(
                "no worker can take the %d tasks waiting for %.0f s: %s; still waiting (a "
                "cluster starting its workers through a batch queue takes a while; Ctrl-C stops "
                "the run)",
                len(self.in_flight),
                now - self._stalled_since,
                what,
            )
            self._stalled_since = math.inf  # said once, until a worker turns up

    def has_room(self) -> bool:
        """Whether another task may be submitted now."""
        self.look_at_cluster()
        return len(self.in_flight) < self.window

    def __len__(self) -> int:
        return len(self.in_flight)

    def submit(self, spec: S, attempt: int = 1) -> None:
        """Submit one task (``attempt`` counts resubmissions of the same spec)."""
        self.look_at_cluster()
        future = self.client.submit(
            self.func,
            spec,
            # Every submission gets a key of its own: reusing a key that was just released
            # can hand back the previous task's result instead of running the new spec.
            key=f"{self.name(spec)}-{attempt}-{uuid.uuid4().hex[:8]}",
            resources=self.resources,
            retries=self.retries,
            pure=False,
        )
        self.in_flight[future] = (spec, attempt)
        self.queue.add(future)

    def _next_finished(self) -> Future[R] | None:
        """The next finished task, looking at the cluster while none is; None when none is left.

        The same wait as ``as_completed``'s own iteration (its condition, notified when a task
        finishes, or 0.1 s), with a look at the workers in between.
        """
        while not self.queue.has_ready():
            if self.queue.is_empty():
                return None
            self.look_at_cluster()
            with self.queue.thread_condition:
                self.queue.thread_condition.wait(timeout=0.1)
        future: Future[R] = next(self.queue)
        return future

    def outcomes(self) -> Iterator[Outcome[S, R]]:
        """Each task's outcome as it finishes, tasks submitted meanwhile included."""
        while (future := self._next_finished()) is not None:
            spec, attempt = self.in_flight.pop(future)
            outcome: Outcome[S, R]
            if future.status == "cancelled":  # only the stop path cancels: the cluster is gone
                self._lost(f"it cancelled task {future.key!r}")
            if future.status == "error":
                outcome = Outcome(spec, attempt, None, future.exception())
            else:
                try:
                    outcome = Outcome(spec, attempt, future.result(), None)
                except CommClosedError:
                    # Finished, but the scheduler went away before its result was fetched: the
                    # client has not noticed yet (its futures are not cancelled), the run has.
                    # Seen in the lost-scheduler test, as a bare "Stream is closed", when the
                    # loop was busy (writing its report) as the scheduler died.
                    self._lost(f"the connection closed while fetching task {future.key!r}")
            future.release()
            yield outcome

    def _lost(self, how: str) -> NoReturn:
        self.in_flight.clear()  # nothing left there to cancel
        raise ClusterError(
            f"lost the Dask cluster: {how} (the scheduler stopped, restarted or became unreachable)"
        )

    def cancel(self) -> None:
        """Cancel every task still in flight."""
        if self.in_flight:
            self.client.cancel(list(self.in_flight))
            self.in_flight.clear()
