"""The run's dataset as the client knows it: described by a worker that built it.

The client needs the dataset's input shapes (for the search space), its task and its fitted
preprocessing (saved in the run directory), never its rows; the workers build the dataset
anyway, each once (:class:`~ckptnas.runtime.DataPlugin`). So one of them describes it
(:func:`~ckptnas.runtime.describe_data`) and the client does not build it a second time, nor
import what building it takes: scikit-learn's datasets took 1.0 s to import on the client,
a netCDF file is read whole.
"""

from __future__ import annotations

import logging
import uuid

from distributed import Client, Future
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError

from ckptnas.data import DataDescription
from ckptnas.errors import ClusterError, DataError
from ckptnas.runtime import _submit
from ckptnas.runtime._worker import DataPlugin, describe_data

logger = logging.getLogger(__name__)


def describe_on_cluster(client: Client, key: str) -> DataDescription:
    """Have every worker build the dataset of ``key`` and one of them describe it.

    The workers build it now, and each worker that starts later (or restarts) as it starts.
    Without a worker yet (batch jobs still queued) this waits for one: no candidate can train
    without one either. It says so once, after :data:`~ckptnas.runtime._submit.NO_WORKER_WARNING`
    seconds, as the search loop does for candidates no worker takes.

    Parameters
    ----------
    client : distributed.Client
    key : str
        The dataset (:func:`~ckptnas.runtime.data_key`).

    Returns
    -------
    DataDescription

    Raises
    ------
    DataError
        If the dataset cannot be built: the worker's one-line message.
    ClusterError
        If the cluster goes away meanwhile.
    """
    # The plugin first: every worker present builds the dataset, in parallel, before this
    # returns, and the description below comes from the cache of whichever worker runs it.
    client.register_plugin(DataPlugin(key))
    future = client.submit(describe_data, key, key=f"describe-data-{uuid.uuid4().hex[:8]}")
    try:
        answer = _result_saying_if_no_worker(client, future)
    except (CommClosedError, FutureCancelledError):
        raise ClusterError(
            "lost the Dask cluster while its workers built the dataset (the scheduler stopped, "
            "restarted or became unreachable)"
        ) from None
    finally:
        future.release()
    if isinstance(answer, str):
        raise DataError(answer)
    return answer


def _result_saying_if_no_worker(
    client: Client, future: Future[DataDescription | str]
) -> DataDescription | str:
    """The description, with one warning if no worker has taken it for a while.

    Without it, a run against a scheduler with no workers (or batch jobs stuck in a queue)
    waited without a word before its first candidate.
    """
    try:
        return future.result(timeout=_submit.NO_WORKER_WARNING)
    except TimeoutError:
        n_workers = len(client.scheduler_info()["workers"])
        what = (
            "the cluster has no workers"
            if not n_workers
            else f"its {n_workers} workers are still building it"
        )
        logger.warning(
            "no worker has described the dataset after %.0f s: %s; %s",
            _submit.NO_WORKER_WARNING,
            what,
            _submit.STILL_WAITING,
        )
    return future.result()
