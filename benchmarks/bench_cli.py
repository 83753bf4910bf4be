"""The read-only commands on a login node: ``import ckptnas``, ``ckptnas summary``, ``lineage``.

Each is timed as a user meets it, in a fresh process (interpreter start-up included), on the
directory of a 30-candidate quickstart-sized run. The run's registry and ``results.nc`` are
written through ckptnas's own storage API with made-up results (training them would take a
minute and measure nothing of these commands).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ckptnas.runtime import CandidateResult
from ckptnas.search import SCRATCH, DonorIndex, plan_transfer
from ckptnas.space import SearchSpace
from ckptnas.storage import LineageRegistry, ResultsWriter

from ._common import quickstart, smoke

N_CANDIDATES = 30
REPEATS = smoke(5, 1)


def write_run(run_dir: Path, space: SearchSpace, n: int, rng: np.random.Generator) -> None:
    """A finished run of ``n`` candidates, each warm-started from its best donor."""
    with LineageRegistry(run_dir) as registry:
        meta = space.to_dict() | {"node_names": [node.name for node in space.nodes]}
        registry.set_meta_many({"space": json.dumps(meta), "metric": "r2"})
        donors = DonorIndex()
        for _ in range(n):
            arch = space.sample(rng)
            match = donors.best_donor(arch)
            plan = SCRATCH if match is None else plan_transfer(space, arch, match[1], match[0])
            cid = registry.add_candidate(arch, plan, space.n_params(arch))
            curve = tuple(float(v) for v in np.sort(rng.random(2)))
            result = CandidateResult(
                candidate_id=cid,
                status="ok",
                train_loss=(1.0, 0.8),
                val_loss=(1.0, 0.9),
                val_metric=curve,
                epoch_time=(0.2, 0.2),
                n_params=space.n_params(arch),
                plan=plan,
            )
            registry.record(result)
            donors.add(cid, arch, result.objective)
        ResultsWriter(run_dir, registry, 2).flush()


def median_seconds(args: list[str]) -> float:
    """Median wall time of ``python -m ckptnas ARGS`` (or ``python -c``) in fresh processes."""
    times = []
    for _ in range(REPEATS):
        tic = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


class ReadCommands:
    """What a user waits for when looking at a run (goal: well under a second each)."""

    unit = "seconds"
    timeout = 300
    number = 1
    repeat = 1

    def setup_cache(self) -> str:
        run_dir = Path("cli-run").resolve()
        if not (run_dir / "results.nc").is_file():
            write_run(run_dir, quickstart().space, N_CANDIDATES, np.random.default_rng(0))
        return str(run_dir)

    def track_import_seconds(self, run_dir: str) -> float:
        """``python -c "import ckptnas"``: loads neither torch nor Dask."""
        return median_seconds(["-c", "import ckptnas"])

    def track_summary_seconds(self, run_dir: str) -> float:
        """``ckptnas summary RUN``: read from the registry, without xarray or torch."""
        return median_seconds(["-m", "ckptnas", "summary", run_dir])

    def track_lineage_seconds(self, run_dir: str) -> float:
        """``ckptnas lineage RUN``: the inheritance tree from the registry."""
        return median_seconds(["-m", "ckptnas", "lineage", run_dir])
