"""Errors every candidate would meet, told once instead of once per candidate.

Before the run, every worker loads what each task brings it (:func:`check_workers_load`);
after it, a run that trained nothing is an error (:func:`refuse_all_failed`); in between, a
search whose first candidates all fail the same way stops (:class:`SameFailure`).

A trainer that a worker cannot import, a driver missing on every node, a data file no worker
can read: such an error is the environment's, not a candidate's, and every candidate would
meet it, each after its retries. Before the first success, the run counts the candidates each
error has failed; once :data:`SAME_FAILURES` distinct candidates failed with one error, the
rest of the budget would only repeat it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cloudpickle
import xarray as xr
from distributed import Client

from ckptnas.errors import ClusterError, ConfigError, SearchFailedError, SearchSpaceError
from ckptnas.runtime._worker import what_fails_to_load
from ckptnas.space import ResolvedSpace
from ckptnas.storage import CandidateStatus

#: Distinct candidates failing with one error, before any candidate succeeds, that stop a run.
SAME_FAILURES = 3


class SameFailure:
    """Which error, if any, every candidate finished so far failed with.

    Parameters
    ----------
    threshold : int
        Distinct candidates that must fail with one error (before any succeeds) to stop.

    Examples
    --------
    >>> guard = SameFailure(2)
    >>> guard.failed(1, "ImportError: no module named 'cupy'")
    >>> guard.failed(2, "ImportError: no module named 'cupy'")
    >>> guard.verdict()
    "ImportError: no module named 'cupy'"
    """

    def __init__(self, threshold: int = SAME_FAILURES) -> None:
        self.threshold = max(1, threshold)
        self._armed = True
        self._failed: dict[str, set[int]] = {}

    def succeeded(self) -> None:
        """A candidate trained: failures from now on are the candidates' own."""
        self._armed = False
        self._failed.clear()

    def failed(self, candidate_id: int, error: str) -> None:
        """An attempt at a candidate raised ``error`` (as one line)."""
        if self._armed:
            self._failed.setdefault(" ".join(error.split()), set()).add(candidate_id)

    def verdict(self) -> str | None:
        """The error that failed ``threshold`` candidates before any succeeded, or ``None``."""
        for error, candidates in self._failed.items():
            if len(candidates) >= self.threshold:
                return error
        return None


def check_workers_load(client: Client, space: ResolvedSpace, trainer: Callable[..., Any]) -> None:
    """Stop before any work if a worker cannot load what every task brings it.

    A task whose function a worker cannot unpickle (its module is not importable there) fails
    on every candidate, each attempt logging Dask's traceback on the worker: told here once,
    naming the worker and the import error.
    """
    described = space.to_dict()
    try:
        pickled = {"trainer": cloudpickle.dumps(trainer)}
    except Exception as exc:  # whatever pickling a user's object raises
        raise ConfigError(f"the trainer cannot be sent to the workers: {exc}") from None
    shipped = described if described.get("kind") == "pickled" else None
    answers = client.run(what_fails_to_load, shipped, pickled)
    for what in ("search space", "trainer"):
        failed = {worker: errors[what] for worker, errors in answers.items() if what in errors}
        if not failed:
            continue
        worker, error = next(iter(failed.items()))
        message = (
            f"{len(failed)} of {len(answers)} workers cannot load the {what} (worker {worker}: "
            f"{error}); its module must be importable on the workers, or travel by value "
            "(cloudpickle.register_pickle_by_value(module)"
        )
        if what == "search space":
            raise SearchSpaceError(f"{message}, or a factory given as a file)")
        raise ClusterError(f"{message})")


def refuse_all_failed(ds: xr.Dataset) -> xr.Dataset:
    """A run's results, or an error with the first failure's reason if every candidate failed."""
    failed = ds.status.values != CandidateStatus.OK
    if ds.sizes["candidate"] and failed.all():
        first = int(ds.candidate.values[0])
        raise SearchFailedError(
            f"every candidate failed ({failed.size} of {failed.size}); candidate {first}: "
            f"{ds.error.values[0]}"
        )
    return ds
