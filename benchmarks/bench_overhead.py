"""What the framework costs per candidate: a search through Dask against the same bare loop.

``setup_cache`` starts a ``LocalCluster(n_workers=1, threads_per_worker=1)`` and imports ckptnas
on the worker (worker start-up is paid once per cluster, not per candidate). Then, three times:

* **framework**: ``Experiment(quickstart, epochs=1, max_candidates=CANDIDATES).run(client)``,
  timed end to end: strategy, donor look-up and plan, registry writes, ``client.submit`` of
  ``train_candidate`` (the worker builds the dataset on first use, reads and applies the donor's
  tensors, trains, saves the checkpoint), ``as_completed``, ``results.nc`` writes;
* **bare**: the very same candidates (architectures, seeds, copied tensors, frozen layers, as
  the run's registry recorded them) trained one after the other in this process with one torch
  thread, donors' weights kept in memory: plain PyTorch, no Dask, no files.

The bare loop reproduces the framework's validation metrics, which checks that both did the same
training. The fastest of the three repetitions of each is kept.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import torch
from distributed import Client, LocalCluster

from ckptnas.lineage import LineageRegistry
from ckptnas.runner import Experiment, candidate_seed
from ckptnas.training import evaluate, train_epoch

from ._common import Problem, quickstart

#: Candidates of the timed search; the quickstart's population is 10, so some are mutations.
CANDIDATES = 12
REPETITIONS = 3


def bare_loop(problem: Problem, run_dir: Path) -> tuple[float, list[float]]:
    """Train a finished run's candidates again in-process; seconds taken and objectives."""
    with LineageRegistry(run_dir, readonly=True) as registry:
        records = registry.candidates("ok")
    config = problem.config
    tic = time.perf_counter()
    states: dict[int, dict[str, torch.Tensor]] = {}
    objectives = []
    for record in records:
        seed = candidate_seed(config.experiment.seed, record.id)
        torch.manual_seed(seed)
        model = problem.space.build(record.arch)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in record.transferred:
                params[name].copy_(states[record.parent][name])  # type: ignore[index]
                params[name].requires_grad_(not config.transfer.freeze)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=config.training.learning_rate)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(config.training.epochs):
            train_epoch(model, problem.data, optimizer, config.training.batch_size, generator)
            metric = evaluate(model, problem.data)[1]
        states[record.id] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        objectives.append(metric)
    return time.perf_counter() - tic, objectives


class FrameworkOverhead:
    """One-epoch quickstart candidates through ckptnas and Dask vs a bare in-process loop."""

    timeout = 600

    def setup_cache(self) -> dict[str, Any]:
        problem = quickstart(epochs=1)
        config = problem.config.replace("experiment", max_candidates=CANDIDATES)
        framework, bare, mismatch = [], [], 0.0
        with (
            LocalCluster(
                n_workers=1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(importlib.import_module, "ckptnas.training")
            for rep in range(REPETITIONS):
                run_dir = Path(f"overhead-run-{rep}").resolve()
                tic = time.perf_counter()
                ds = Experiment(config, run_dir, progress=False).run(client)
                framework.append(time.perf_counter() - tic)
                seconds, objectives = bare_loop(problem, run_dir)
                bare.append(seconds)
                ok = ds.objective.values[ds.status.values == "ok"]
                assert len(ok) == CANDIDATES, "a candidate failed"
                mismatch = max(mismatch, float(abs(ok - objectives).max()))
        return {
            "framework": min(framework),
            "bare": min(bare),
            "mismatch": mismatch,
            "warm": int((ds.parent >= 0).sum()),
        }

    def track_overhead_ratio(self, m: dict[str, Any]) -> float:
        """Framework time over bare time for the same candidates (1 means no overhead).

        Good: under 1.05, the goal of under 5% overhead per one-epoch quickstart candidate.
        """
        return float(m["framework"] / m["bare"])

    track_overhead_ratio.unit = "framework/bare"  # type: ignore[attr-defined]

    def track_overhead_percent(self, m: dict[str, Any]) -> float:
        """The framework's extra time per candidate, as a percentage of a bare candidate's time.

        Good: under 5 (the goal).
        """
        return float(100 * (m["framework"] - m["bare"]) / m["bare"])

    track_overhead_percent.unit = "%"  # type: ignore[attr-defined]

    def track_overhead_ms_per_candidate(self, m: dict[str, Any]) -> float:
        """The framework's extra wall time per candidate, in milliseconds.

        Good: a few ms; the Dask round trip alone is about 16 ms unless hidden by the in-flight
        window.
        """
        return float(1000 * (m["framework"] - m["bare"]) / CANDIDATES)

    track_overhead_ms_per_candidate.unit = "ms"  # type: ignore[attr-defined]

    def track_bare_seconds_per_candidate(self, m: dict[str, Any]) -> float:
        """Seconds of one bare one-epoch candidate: the yardstick of the ratios above."""
        return float(m["bare"] / CANDIDATES)

    track_bare_seconds_per_candidate.unit = "s"  # type: ignore[attr-defined]
