"""The one way ckptnas hands work to Dask: a bounded window of tasks, outcomes as they finish.

Both the search loop and top-K full training submit through :class:`Submitter`. It keeps at
least twice as many tasks in flight as there are workers (measured: with 2 workers, 2 tasks in
flight left each 50 ms task paying 16 ms of scheduler round trip, 4 hid it), more when tasks are
so short that the client's turn-around would leave workers idle (see ``_window.py``). It
submits lazily as tasks finish, not the whole batch at once (a task that asks for resources is
assigned to a worker at once, and every task on a worker that dies counts as failed), and asks
for a GPU per task when the workers have GPUs.

Tasks go to Dask and come back in batches: everything that finished while the client was busy
is fetched in one ``gather``, and what replaces it is submitted in one ``map``. Each Dask call
from the client's thread wakes the event loop and waits for it; one per candidate cost about
1 ms each way on two cores, which is what held the client to ~130 candidates/s.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, NoReturn, TypeVar

from distributed import Client, Future, as_completed
from distributed.comm.core import CommClosedError

from ckptnas.errors import ClusterError
from ckptnas.runtime._deadline import Deadline, TaskTimeoutError, timed
from ckptnas.runtime._signals import raise_if_interrupted
from ckptnas.runtime._window import moving_average, window_size

logger = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

#: Seconds between two looks at the cluster's workers (see :meth:`Submitter.look_at_cluster`).
_CLUSTER_LOOK_INTERVAL = 1.0
#: Seconds that tasks may wait with no worker able to take them before the run says so.
NO_WORKER_WARNING = 30.0
#: What a run waiting for workers adds to its warning: it goes on waiting, and why that is normal.
STILL_WAITING = (
    "still waiting (a cluster starting its workers through a batch queue takes a while; Ctrl-C "
    "stops the run)"
)
#: Seconds that fetching finished results may wait before it looks at the cluster again.
_FETCH_SECONDS = 10.0
#: Recent turn-arounds whose longest sizes the window.
_TURNAROUNDS_KEPT = 64


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
        Tasks in flight at most; 0 sizes it from the task and turn-around times
        (:func:`window_size`) each time there is room to fill.
    retries : int
        Dask's own retries of a task that raised.
    timing : callable, optional
        When a result's task started and ended on its worker (seconds since the epoch).
        Given, the window grows while tasks are shorter than the turn-around from a task's end
        to its replacement's submission; otherwise it stays at two per worker.
    max_seconds : float
        How long one task may run on its worker; one past it is stopped (see
        :class:`~ckptnas.runtime._deadline.Deadline`) and comes back failed with
        :class:`~ckptnas.runtime._deadline.TaskTimeoutError`. 0: no limit.
    workers_may_join : bool
        Whether workers may join the cluster later (queued batch jobs, a scheduler others add
        workers to). If not, a cluster left with no worker for :data:`NO_WORKER_WARNING` s
        stops the run with :class:`~ckptnas.errors.ClusterError` instead of waiting.
    """

    def __init__(  # noqa: PLR0913  # the task, then how to run it, each a keyword
        self,
        client: Client,
        func: Callable[[S], R],
        name: Callable[[S], str],
        window: int = 0,
        retries: int = 0,
        timing: Callable[[R], tuple[float, float]] | None = None,
        max_seconds: float = 0.0,
        workers_may_join: bool = True,
    ) -> None:
        self.client = client
        self.func = func
        self.name = name
        self.fixed_window = window
        self.retries = retries
        self.timing = timing
        #: Recent task durations, seconds (a moving average).
        self.task_seconds = math.nan
        #: Recent turn-arounds, from a task's end to its replacement's submission (seconds).
        self.turnarounds: deque[float] = deque(maxlen=_TURNAROUNDS_KEPT)
        #: When the tasks of the last batch handed out ended (seconds since the epoch).
        self._ended: list[float] = []
        # Not with_results=True: it fetched results sooner but gained nothing measurable with
        # 600 instant tasks (74 and 75 candidates/s), and a future cancelled with a reason that
        # is not asyncio's CancelledError then never comes out of the queue: the run waits for
        # ever (distributed 2026.8, Future._result asserts on the reason).
        self.queue: as_completed = as_completed()
        self.in_flight: dict[Future[R], tuple[S, int]] = {}
        self.n_workers = 0
        self.resources: dict[str, float] | None = None
        self._looked_at = -math.inf
        #: Workers that can take a task with :attr:`resources`.
        self.n_capable = 0
        self._stalled_since: float | None = None
        self.workers_may_join = workers_may_join
        self.deadline = Deadline(client, max_seconds) if max_seconds > 0 else None
        #: When each task in flight was submitted, by key (only with a deadline).
        self._submitted: dict[str, float] = {}
        #: Tasks stopped for running past the deadline, and the error they end with.
        self._timed_out: dict[Future[R], TaskTimeoutError] = {}

    def look_at_cluster(self) -> None:
        """Count the workers there now and size the resource request from them.

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
        self._say_if_stalled(now)
        self._stop_overdue()

    @property
    def turnaround_seconds(self) -> float:
        """The longest of the recent turn-arounds (NaN before any was measured).

        The longest, not the mean: a worker waits whenever one replacement comes late. With
        15 ms candidates on one worker, sizing by the mean or the 90th percentile kept 2 in
        flight and the worker busy 80% of the time; 3 and 4 in flight gave 87% and 90%.
        """
        return max(self.turnarounds, default=math.nan)

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
            if not self.n_workers and not self.workers_may_join:
                self._lost_every_worker(now - self._stalled_since)
            what = (
                "the cluster has no workers"
                if not self.n_workers
                else f"none of its {self.n_workers} workers has the resources they ask for "
                f"({self.resources})"
            )
            logger.warning(
                "no worker can take the %d tasks waiting for %.0f s: %s; %s",
                len(self.in_flight),
                now - self._stalled_since,
                what,
                STILL_WAITING,
            )
            self._stalled_since = math.inf  # said once, until a worker turns up

    def _lost_every_worker(self, seconds: float) -> NoReturn:
        """A cluster that starts no more workers has none left: waiting would be for ever."""
        self.cancel()
        raise ClusterError(
            f"the cluster has lost every worker ({seconds:.0f} s without one) and starts no "
            "others; the tasks in flight were cancelled"
        )

    def _stop_overdue(self) -> None:
        """Stop the tasks running past the deadline; they come back failed (TaskTimeoutError)."""
        if self.deadline is None:
            return
        overdue = self.deadline.overdue(self._submitted)
        futures = [f for f in self.in_flight if str(f.key) in overdue]
        for future in futures:
            worker, seconds = overdue[str(future.key)]
            del self._submitted[str(future.key)]
            self._timed_out[future] = TaskTimeoutError(
                f"ran past [training] max_seconds = {self.deadline.max_seconds:g} "
                f"({seconds:.0f} s on worker {worker}); stopped, and its worker restarted"
            )
        if futures:
            self.deadline.stop(futures, (overdue[str(f.key)][0] for f in futures))

    @property
    def window(self) -> int:
        """Tasks in flight at most now: the fixed window, or one sized by :func:`window_size`.

        Sized from the latest times at each call, not at each look at the cluster: with 10 ms
        tasks, the second that a window of 2 lasted until the next look cost 4 points of a
        worker's time.
        """
        return self.fixed_window or window_size(
            max(1, self.n_workers), self.task_seconds, self.turnaround_seconds
        )

    def room(self) -> int:
        """How many more tasks may be submitted now."""
        self.look_at_cluster()
        return max(0, self.window - len(self.in_flight))

    def has_room(self) -> bool:
        """Whether another task may be submitted now."""
        return self.room() > 0

    def __len__(self) -> int:
        return len(self.in_flight)

    def submit(self, spec: S, attempt: int = 1) -> None:
        """Submit one task (``attempt`` counts resubmissions of the same spec)."""
        self.submit_many([(spec, attempt)])

    def submit_many(self, tasks: Sequence[tuple[S, int]]) -> None:
        """Submit several ``(spec, attempt)`` tasks in one message to the scheduler."""
        if not tasks:
            return
        self.look_at_cluster()
        if self._ended:  # the first submission after a batch came back: its replacements
            now = time.time()
            # Clamped: the worker's clock may be a little ahead of this machine's.
            self.turnarounds.extend(max(0.0, now - ended) for ended in self._ended)
            self._ended.clear()
        func = self.func if self.deadline is None else partial(timed, self.func)
        futures = self.client.map(
            func,
            [spec for spec, _ in tasks],
            # Every submission gets a key of its own: reusing a key that was just released
            # can hand back the previous task's result instead of running the new spec.
            key=[f"{self.name(spec)}-{attempt}-{uuid.uuid4().hex[:8]}" for spec, attempt in tasks],
            resources=self.resources,
            retries=self.retries,
            pure=False,
        )
        self.in_flight.update(zip(futures, tasks, strict=True))
        if self.deadline is not None:
            now = time.time()
            self._submitted.update((str(future.key), now) for future in futures)
        self.queue.update(futures)

    def _finished_batch(self) -> list[Future[R]]:
        """Every task finished now, waiting for one if none is; empty when none is left.

        The same wait as ``as_completed``'s own iteration (its condition, notified when a task
        finishes, or 0.1 s), with a look at the workers in between.
        """
        raise_if_interrupted()  # a Ctrl-C that a finalizer swallowed stops the run here
        while not self.queue.has_ready():
            if self.queue.is_empty():
                return []
            raise_if_interrupted()  # or while it waits
            self.look_at_cluster()
            with self.queue.thread_condition:
                self.queue.thread_condition.wait(timeout=0.1)
        futures: list[Future[R]] = self.queue.next_batch(block=False)
        return futures

    def batches(self) -> Iterator[list[Outcome[S, R]]]:
        """The outcomes of the tasks finished at each look (fetched in one round trip)."""
        while futures := self._finished_batch():
            outcomes = self._outcomes(futures)
            futures = [f for f in futures if f not in self.in_flight]  # not those lost again
            # Released on the event loop in one call: each release from this thread wakes the
            # loop on its own (1,000 releases cost the client 0.4 s of 4 s with instant tasks).
            loop = self.client.loop
            if loop is None:  # a client closing meanwhile: its futures go with it
                _release(futures)
            else:
                loop.add_callback(_release, futures)
            if self.timing is not None:
                for outcome in outcomes:
                    if outcome.result is not None:
                        start, end = self.timing(outcome.result)
                        if math.isfinite(start) and math.isfinite(end):
                            self.task_seconds = moving_average(
                                self.task_seconds, max(0.0, end - start)
                            )
                            self._ended.append(end)
            yield outcomes

    def outcomes(self) -> Iterator[Outcome[S, R]]:
        """Each task's outcome as it finishes, tasks submitted meanwhile included."""
        for batch in self.batches():
            yield from batch

    def _outcomes(self, futures: list[Future[R]]) -> list[Outcome[S, R]]:
        """The outcomes of finished futures, in their order; their results fetched at once."""
        for future in futures:
            # Only the stop path and the deadline cancel: else the cluster is gone.
            if future.status == "cancelled" and future not in self._timed_out:
                self._lost(f"it cancelled task {future.key!r}")
        done = [f for f in futures if f.status not in ("error", "cancelled")]
        try:
            results = self._fetch(done)
        except CommClosedError:
            # Finished, but the scheduler went away before the results were fetched: the
            # client has not noticed yet (its futures are not cancelled), the run has. Seen in
            # the lost-scheduler test, as a bare "Stream is closed", when the loop was busy
            # (writing its report) as the scheduler died.
            self._lost(f"the connection closed while fetching {len(done)} finished tasks")
        outcomes: list[Outcome[S, R]] = []
        for future in futures:
            if future in done and future not in results:
                # Its result was lost with its worker; Dask runs it again: wait for that.
                self.queue.add(future)
                continue
            spec, attempt = self.in_flight.pop(future)
            self._submitted.pop(str(future.key), None)
            if future in results:
                outcomes.append(Outcome(spec, attempt, results[future], None))
            elif future in self._timed_out:
                outcomes.append(Outcome(spec, attempt, None, self._timed_out.pop(future)))
            else:
                outcomes.append(Outcome(spec, attempt, None, future.exception()))
        return outcomes

    def _fetch(self, futures: list[Future[R]]) -> dict[Future[R], R]:
        """The results of finished futures, fetched together; those lost meanwhile left out.

        A result whose worker went before it was fetched is computed again, and
        ``Client.gather`` waits for that, on a cluster that may have no worker left: the run
        hung there once. So a fetch waits :data:`_FETCH_SECONDS` at most (doubled while every
        result is still there), then looks at the cluster and fetches what is still finished.
        """
        results: dict[Future[R], R] = {}
        seconds = _FETCH_SECONDS
        while ready := [f for f in futures if f.status == "finished" and f not in results]:
            try:
                # Client.gather has no timeout; its coroutine, run the same way, takes one.
                values = self.client.sync(self.client._gather, ready, callback_timeout=seconds)
            except TimeoutError:
                self.look_at_cluster()
                if all(f.status == "finished" for f in ready):
                    seconds *= 2
                continue
            results.update(zip(ready, values, strict=True))
        return results

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
            self._submitted.clear()


def _release(futures: list[Future[Any]]) -> None:
    """Let Dask forget finished tasks (called on the client's event loop)."""
    for future in futures:
        future.release()
