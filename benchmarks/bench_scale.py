"""Whether the client's cost per candidate stays flat as a search grows to 100,000 candidates.

**ClientScale** runs searches of 1,000, 10,000 and 100,000 candidates through the public API
(:class:`~ckptnas.runtime.Experiment` with the live HTML report, as ``ckptnas run`` has it) on
the embedded cluster with two workers, the training replaced by a task that answers at once
(:func:`~benchmarks.bench_client.instant_result`): everything the client does per candidate
(strategy, donor look-up, registry, ``results.nc``, the live page, Dask round trips) and
nothing else. For each size it tracks the rate over the whole run, the rate of the last tenth of
the candidates (by the time they were recorded) against the first tenth's, and the client's
peak memory.

Each size runs in a process of its own, so that its peak memory is its alone (the embedded
cluster's scheduler runs in the client's process and counts; the workers do not). The child
imports this repository's ``benchmarks`` package by path: asv's importer is in this process
only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from ._common import smoke

#: The sizes of the searches; a smoke run checks only that the benchmark runs.
SIZES = smoke([1_000, 10_000, 100_000], [100, 200, 400])

#: The child's program: one search, then its figures as JSON on the last line of its output.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import numpy as np
from benchmarks.bench_client import DIABETES, ByValue, instant_result
from ckptnas.analysis import LiveReport
from ckptnas.config import config_from_dict
from ckptnas.runtime import Experiment, connect
from ckptnas.storage import LineageRegistry

n = {n}
config = config_from_dict(DIABETES).replace(
    "experiment", max_candidates=n, allow_duplicates=True
)
run = Path({run!r})
with connect(config.replace("cluster", n_workers=2)) as client:
    experiment = Experiment(
        config, run, progress=False, trainer=ByValue(instant_result), listeners=[LiveReport(run)]
    )
    tic = time.perf_counter()
    experiment.run(client)
    seconds = time.perf_counter() - tic
with LineageRegistry(run, readonly=True) as registry:
    ends = np.sort([r.end_time for r in registry.candidates()])
tenth = n // 10
print(json.dumps({{
    "seconds": seconds,
    "first": tenth / (ends[tenth] - ends[0]),
    "last": tenth / (ends[-1] - ends[-tenth - 1]),
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}}))
"""


def run_search(n: int, run_dir: Path) -> dict[str, float]:
    """Run one search of ``n`` instant candidates in a child process; its figures."""
    root = str(Path(__file__).resolve().parents[1])
    program = _CHILD.format(root=root, n=n, run=str(run_dir.resolve()))
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the search of {n} candidates failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


class ClientScale:
    """Candidates per second and client memory for searches of 1,000 to 100,000 candidates."""

    timeout = 3600
    params: ClassVar[list[int]] = SIZES
    param_names: ClassVar[list[str]] = ["candidates"]

    def setup_cache(self) -> dict[int, dict[str, float]]:
        return {n: run_search(n, Path(f"scale-run-{n}")) for n in SIZES}

    def track_candidates_per_second(self, m: dict[int, dict[str, float]], n: int) -> float:
        """Candidates per second over the whole run, start-up of the cluster excluded.

        Aim: 1,000 on the two-core development machine.
        """
        return float(n / m[n]["seconds"])

    track_candidates_per_second.unit = "candidates/s"  # type: ignore[attr-defined]

    def track_last_tenth_over_first(self, m: dict[int, dict[str, float]], n: int) -> float:
        """The rate of the last tenth of the candidates over that of the first tenth.

        Good: at least 0.8 at every size (1 means a flat cost per candidate).
        """
        return float(m[n]["last"] / m[n]["first"])

    track_last_tenth_over_first.unit = "ratio"  # type: ignore[attr-defined]

    def track_client_peak_mb(self, m: dict[int, dict[str, float]], n: int) -> float:
        """The client process's peak resident memory, the embedded scheduler's included.

        Good: under 2,000 MB at 100,000 candidates.
        """
        return float(m[n]["peak_mb"])

    track_client_peak_mb.unit = "MB"  # type: ignore[attr-defined]
