"""How many tasks to keep in flight: enough that no worker waits for the client.

Sized from two measurements the :class:`~ckptnas.runtime._submit.Submitter` keeps: how long a
task runs, and the turn-around from a task's end to its replacement's submission.
"""

from __future__ import annotations

import math

#: Tasks in flight per worker at most when tasks are short (see :func:`window_size`).
MAX_PER_WORKER = 16


def window_size(n_workers: int, task_seconds: float, turnaround_seconds: float) -> int:
    """Tasks to keep in flight on ``n_workers``: enough that none waits for the client.

    After a task ends, its replacement reaches the scheduler a turn-around *T* later (the
    result's way to the client, its recording, the strategy's next candidate, the submission);
    meanwhile each worker runs *T / d* more tasks of duration *d*. So each worker needs
    ``1 + ceil(T / d)`` tasks in flight, at least 2 (measured: see ``_submit.py``) and at most
    :data:`MAX_PER_WORKER`: with tasks of ~0 s, 16 per worker let the client handle twice as
    many per second as 2 did, by batching what finishes meanwhile. More in flight also means a
    search that asks for candidates knowing fewer results, so the window only grows while
    workers would otherwise wait. NaN: not measured yet.
    """
    per_worker = 2
    if task_seconds > 0 and turnaround_seconds > 0:
        needed = 1 + math.ceil(turnaround_seconds / task_seconds)
        per_worker = min(MAX_PER_WORKER, max(per_worker, needed))
    elif task_seconds == 0:  # tasks that take no measurable time
        per_worker = MAX_PER_WORKER
    return per_worker * n_workers


def moving_average(average: float, value: float, weight: float = 0.2) -> float:
    """An exponential moving average: recent tasks weigh most, one outlier little."""
    return value if math.isnan(average) else (1 - weight) * average + weight * value
