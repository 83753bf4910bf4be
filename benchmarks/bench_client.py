"""How many candidates one search client handles, and how busy it keeps its workers.

* **ClientThroughput**: the whole client loop (strategy, donor look-up and plan, registry,
  results writer, Dask round trips) on the embedded cluster with two workers, the training
  replaced by a task that answers at once (:func:`instant_result`). Candidates per second,
  bookkeeping included, for a search of 1,000 candidates.
* **WorkerUtilisation**: 200 real one-epoch candidates of scikit-learn's diabetes data (about
  15 ms each) on one worker; the share of the run's wall time the worker spent in candidates.

The workers cannot import this module (asv loads ``benchmarks`` through an importer of its own,
which no worker has), so the function it sends them travels by value (:class:`ByValue`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import cloudpickle
import numpy as np

from ckptnas.config import config_from_dict
from ckptnas.runtime import CandidateResult, CandidateSpec, Experiment, connect
from ckptnas.storage import CandidateStatus

from ._common import smoke

# cloudpickle copies this module's functions instead of naming them for import.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

A = TypeVar("A")
R = TypeVar("R")


class ByValue(Generic[A, R]):
    """A function of this module that a worker receives whole, not as a name to import.

    Dask pickles a task graph with the standard pickler first, which names a function for
    import whatever cloudpickle's registry says; this wrapper pickles as its function's
    cloudpickle bytes, and unpickles as the function itself.
    """

    def __init__(self, func: Callable[[A], R]) -> None:
        self.func = func
        self.payload = cloudpickle.dumps(func)

    def __call__(self, arg: A) -> R:
        return self.func(arg)

    def __reduce__(self) -> tuple[Callable[[bytes], Callable[[A], R]], tuple[bytes]]:
        return cloudpickle.loads, (self.payload,)


#: A small space on bundled data: candidates that train in milliseconds.
DIABETES = {
    "experiment": {"name": "client", "flush_interval": 5.0},
    "data": {"kind": "sklearn", "name": "diabetes"},
    "space": {"num_nodes": 3, "input_nodes": 0, "units": [8, 16, 32], "shared_inputs": []},
    "search": {"population_size": 20, "sample_size": 5},
    "training": {"epochs": 1, "batch_size": 64},
}
#: Runs of each search; the best (client) or the busiest (worker) is kept.
REPEATS = smoke(3, 1)


def instant_result(spec: CandidateSpec) -> CandidateResult:
    """A finished candidate with no training: the cost of everything but the work."""
    now = time.time()
    metric = float(np.random.default_rng(spec.seed).uniform())
    return CandidateResult(
        candidate_id=spec.candidate_id,
        status=CandidateStatus.OK,
        train_loss=(1.0 - metric,),
        val_loss=(1.0 - metric,),
        val_metric=(metric,),
        epoch_time=(0.0,),
        n_params=1,
        worker="instant",
        device="cpu",
        start_time=now,
        end_time=now,
        checkpoint_digest="0" * 64,
        plan=spec.plan,
    )


class ClientThroughput:
    """Candidates per second through the client loop, with tasks that cost nothing."""

    timeout = 600
    candidates = smoke(1000, 50)

    def setup_cache(self) -> dict[str, Any]:
        config = config_from_dict(DIABETES).replace(
            "experiment", max_candidates=self.candidates, allow_duplicates=True
        )
        seconds = []
        with connect(config.replace("cluster", n_workers=2)) as client:
            for rep in range(REPEATS):
                run_dir = Path(f"client-run-{rep}").resolve()
                experiment = Experiment(
                    config, run_dir, progress=False, trainer=ByValue(instant_result)
                )
                tic = time.perf_counter()
                ds = experiment.run(client)
                seconds.append(time.perf_counter() - tic)
                assert ds.sizes["candidate"] == self.candidates
        return {"seconds": np.array(seconds)}

    def track_candidates_per_second(self, m: dict[str, Any]) -> float:
        """Candidates the client registers, plans, submits and records per second (best run).

        Good: at least 300 on the two-core development machine.
        """
        return float(self.candidates / m["seconds"].min())

    track_candidates_per_second.unit = "candidates/s"  # type: ignore[attr-defined]


class WorkerUtilisation:
    """Share of the time one worker spends in candidates that last about 15 ms."""

    timeout = 600
    candidates = smoke(200, 20)

    def setup_cache(self) -> dict[str, Any]:
        config = config_from_dict(DIABETES).replace(
            "experiment", max_candidates=self.candidates, allow_duplicates=True
        )
        busy = []
        with connect(config.replace("cluster", n_workers=1)) as client:
            for rep in range(REPEATS):
                run_dir = Path(f"utilisation-run-{rep}").resolve()
                tic = time.time()
                ds = Experiment(config, run_dir, progress=False).run(client)
                wall = time.time() - tic
                working = (ds.end_time - ds.start_time) / np.timedelta64(1, "s")
                busy.append(float(working.sum()) / wall)
        return {"busy": np.array(busy), "task_ms": 1000 * float(working.median())}

    def track_worker_busy_percent(self, m: dict[str, Any]) -> float:
        """The worker's time in candidates over the run's wall time (best of three runs).

        Good: at least 85.
        """
        return float(100 * m["busy"].max())

    track_worker_busy_percent.unit = "%"  # type: ignore[attr-defined]

    def track_candidate_ms(self, m: dict[str, Any]) -> float:
        """Median time of one candidate on the worker: the size of the work being fed."""
        return float(m["task_ms"])

    track_candidate_ms.unit = "ms"  # type: ignore[attr-defined]
