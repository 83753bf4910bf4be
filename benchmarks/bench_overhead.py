"""What the framework costs per candidate: a search through Dask against the same bare loop.

``setup_cache`` starts the LocalCluster that ``ckptnas run`` starts, with one single-threaded
worker, and runs the quickstart search (its own budget of candidates) with one epoch per
candidate, then:

* **framework**: ``Experiment(quickstart, epochs=1).run(client)``, timed end to end: strategy,
  donor look-up and plan, registry writes, ``client.submit`` of ``train_candidate`` (the worker
  reads and verifies the donor's tensors, trains, saves and fsyncs the checkpoint),
  ``as_completed``, ``results.nc`` writes;
* **bare**: the very same candidates (architectures, seeds, copied tensors, frozen layers, as
  the run's registry recorded them) trained one after the other in this process with one torch
  thread, donors' weights kept in memory: plain PyTorch, no Dask, no files.

The bare loop reproduces the framework's validation metrics, which checks that both did the same
training. One untimed round of each comes first (a fresh process trains its first candidates
slowly, and that is not the framework's cost). Then the two alternate, and each round's pair
gives one ratio; the median over rounds is kept, so a slow spell of a shared machine that falls
on one half of a round moves one ratio, not the figure.

The ratio takes in everything, but on a shared machine a few percent are within its noise. The
same rounds therefore also split the overhead in two, each part measured within one run (so
each hardly moves with the machine's speed): the time outside training epochs that the search
spends beyond what the bare loop spends there (``track_machinery_percent``: donor look-up,
registry, Dask round trips, reading and writing checkpoints, ``results.nc``), and how much
longer the search's epochs took than the bare loop's (``track_epoch_slowdown_percent``: the
work of the client and scheduler on the worker's machine). An epoch is a training pass and its
validation, timed as ``train_candidate`` times it.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ckptnas.runtime import Curves, Experiment, candidate_seed, connect, seed_weights
from ckptnas.storage import LineageRegistry

from ._common import Problem, quickstart, smoke

#: Timed rounds (a search, then its bare loop), after one untimed warm-up round.
ROUNDS = smoke(6, 1)
#: Candidates of each search: the quickstart's own budget (a smoke run takes a few).
CANDIDATES = smoke(30, 4)


def overhead_problem() -> Problem:
    """The quickstart with one epoch per candidate and ``CANDIDATES`` candidates."""
    problem = quickstart(epochs=1)
    config = problem.config.replace("experiment", max_candidates=CANDIDATES)
    return replace(problem, config=config)


@dataclass(frozen=True)
class BareRun:
    """What the bare loop took: in all, in its epochs alone, and the metrics it reached."""

    seconds: float
    epoch_seconds: float
    objectives: list[float]


def bare_loop(problem: Problem, run_dir: Path) -> BareRun:
    """Train a finished run's candidates again in-process, timed like ``train_candidate``."""
    with LineageRegistry(run_dir, readonly=True) as registry:
        records = registry.candidates("ok")
    config = problem.config
    tic = time.perf_counter()
    epoch_seconds = 0.0
    states: dict[int, dict[str, torch.Tensor]] = {}
    objectives = []
    for record in records:
        seed = candidate_seed(config.experiment.seed, record.id)
        seed_weights(seed)
        model = problem.space.build(record.arch)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in record.transferred:
                params[name].copy_(states[record.parent][name])  # type: ignore[index]
                params[name].requires_grad_(not config.transfer.freeze)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=config.training.learning_rate)
        generator = torch.Generator().manual_seed(seed)
        curves = Curves()  # an epoch timed exactly as train_candidate times it
        for _ in range(config.training.epochs):
            curves.fit_epoch(model, problem.data, optimizer, config.training.batch_size, generator)
        epoch_seconds += sum(curves.epoch_time)
        states[record.id] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        objectives.append(curves.val_metric[-1])
    return BareRun(time.perf_counter() - tic, epoch_seconds, objectives)


class FrameworkOverhead:
    """One-epoch quickstart candidates through ckptnas and Dask vs a bare in-process loop."""

    timeout = 600

    def setup_cache(self) -> dict[str, Any]:
        problem = overhead_problem()
        names = ("framework", "epochs", "bare", "bare_epochs")
        rounds: dict[str, list[float]] = {name: [] for name in names}
        mismatch = 0.0
        # The LocalCluster that ``ckptnas run`` starts, with one single-threaded worker.
        with connect(problem.config.replace("cluster", n_workers=1)) as client:
            client.run(importlib.import_module, "ckptnas.runtime")
            for rep in range(1 + ROUNDS):
                run_dir = Path(f"overhead-run-{rep}").resolve()
                tic = time.perf_counter()
                ds = Experiment(problem.config, run_dir, progress=False).run(client)
                seconds = time.perf_counter() - tic
                bare = bare_loop(problem, run_dir)
                ok = ds.objective.values[ds.status.values == "ok"]
                assert len(ok) == ds.sizes["candidate"], "a candidate failed"
                mismatch = max(mismatch, float(abs(ok - bare.objectives).max()))
                if rep > 0:  # round 0 warms up both processes
                    rounds["framework"].append(seconds)
                    rounds["epochs"].append(float(ds.epoch_time.sum()))
                    rounds["bare"].append(bare.seconds)
                    rounds["bare_epochs"].append(bare.epoch_seconds)
        return {
            **{k: np.array(v) for k, v in rounds.items()},
            "candidates": int(ds.sizes["candidate"]),
            "mismatch": mismatch,
        }

    def track_overhead_ratio(self, m: dict[str, Any]) -> float:
        """Framework time over bare time for the same candidates, median of the rounds.

        Good: under 1.05, the goal of under 5% overhead per one-epoch quickstart candidate
        (1 means no overhead).
        """
        return float(np.median(m["framework"] / m["bare"]))

    track_overhead_ratio.unit = "framework/bare"  # type: ignore[attr-defined]

    def track_overhead_percent(self, m: dict[str, Any]) -> float:
        """The framework's extra time per candidate, as a percentage of a bare candidate's time.

        Good: under 5 (the goal).
        """
        return float(100 * (np.median(m["framework"] / m["bare"]) - 1))

    track_overhead_percent.unit = "%"  # type: ignore[attr-defined]

    def track_overhead_ms_per_candidate(self, m: dict[str, Any]) -> float:
        """The framework's extra wall time per candidate against the bare loop, in milliseconds.

        Good: under 5% of ``track_bare_seconds_per_candidate``.
        """
        return float(1000 * np.median(m["framework"] - m["bare"]) / m["candidates"])

    track_overhead_ms_per_candidate.unit = "ms"  # type: ignore[attr-defined]

    def track_machinery_percent(self, m: dict[str, Any]) -> float:
        """The framework's time outside training epochs, beyond the bare loop's, per epoch time.

        ``(search - its epochs) / its epochs - (bare - its epochs) / its epochs``, in percent,
        median of the rounds. Each term comes from one run, so it hardly depends on the
        machine's speed; it is everything the machinery adds except any slowdown of the epochs
        themselves, which only the ratio sees. Good: under 5.
        """
        search = (m["framework"] - m["epochs"]) / m["epochs"]
        bare = (m["bare"] - m["bare_epochs"]) / m["bare_epochs"]
        return float(100 * np.median(search - bare))

    track_machinery_percent.unit = "%"  # type: ignore[attr-defined]

    def track_epoch_slowdown_percent(self, m: dict[str, Any]) -> float:
        """How much longer the search's epochs took than the bare loop's same epochs.

        Good: near 0. On a machine whose cores the worker shares with the client and scheduler
        (a laptop, this two-core benchmark machine) their work can slow the worker's epochs.
        """
        return float(100 * (np.median(m["epochs"] / m["bare_epochs"]) - 1))

    track_epoch_slowdown_percent.unit = "%"  # type: ignore[attr-defined]

    def track_bare_seconds_per_candidate(self, m: dict[str, Any]) -> float:
        """Seconds of one bare one-epoch candidate (median round): the yardstick of the above."""
        return float(np.median(m["bare"]) / m["candidates"])

    track_bare_seconds_per_candidate.unit = "s"  # type: ignore[attr-defined]

    def track_bare_spread_percent(self, m: dict[str, Any]) -> float:
        """How much the very same bare loop's time varied between rounds: the machine's noise.

        Good: a few percent. Far above 5, the ratio to the bare loop cannot resolve the goal on
        this machine, and ``track_machinery_percent`` is the figure to read.
        """
        return float(100 * (m["bare"].max() - m["bare"].min()) / m["bare"].min())

    track_bare_spread_percent.unit = "%"  # type: ignore[attr-defined]

    def track_metric_mismatch(self, m: dict[str, Any]) -> float:
        """Largest gap between a candidate's validation metric in the search and in the bare loop.

        Good: 0 up to float rounding (under 1e-5), which shows that both did the same training.
        """
        return float(m["mismatch"])

    track_metric_mismatch.unit = "|Δ metric|"  # type: ignore[attr-defined]


class PlainClusterEpochs:
    """Epochs on a ``LocalCluster`` started the default way against the same bare loop.

    Not the embedded cluster (which starts its workers with glibc's default allocator): one
    single-threaded worker of a plain ``LocalCluster(n_workers=1, threads_per_worker=1)``, as a
    user's own cluster or ``dask worker`` processes are, whose nanny sets Dask's
    ``MALLOC_TRIM_THRESHOLD_=65536``. The quickstart search runs on it with one epoch per
    candidate, then the bare loop trains its candidates again in this process; each round gives
    the ratio of the two epoch times (each epoch timed as ``train_candidate`` times it).
    """

    timeout = 600
    rounds = smoke(3, 1)

    def setup_cache(self) -> dict[str, Any]:
        from distributed import Client, LocalCluster

        problem = overhead_problem()
        ratios = []
        with (
            LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            for rep in range(1 + self.rounds):
                run_dir = Path(f"plain-cluster-run-{rep}").resolve()
                ds = Experiment(problem.config, run_dir, progress=False).run(client)
                bare = bare_loop(problem, run_dir)
                if rep > 0:  # round 0 warms up both processes
                    ratios.append(float(ds.epoch_time.sum()) / bare.epoch_seconds)
        return {"ratios": np.array(ratios)}

    def track_epoch_ratio(self, m: dict[str, Any]) -> float:
        """Epoch time on the plain cluster's worker over the bare loop's, median of the rounds.

        Good: at most 1.05 (1 means the worker trains as fast as plain PyTorch).
        """
        return float(np.median(m["ratios"]))

    track_epoch_ratio.unit = "worker/bare"  # type: ignore[attr-defined]
