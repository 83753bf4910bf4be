"""The experiment loop: ask the strategy, find the donor, submit to Dask, record what returns.

:class:`Experiment` keeps ``max_in_flight`` candidates running (twice the workers by default,
enough to hide Dask's round trip) and submits a new one each time one finishes, never the whole
search at once. Only this client writes the registry and ``results.nc``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from distributed import Client, Future, LocalCluster, as_completed
from tqdm.auto import tqdm

from ckptnas.config import Config, load_config
from ckptnas.data import TabularData, load_data
from ckptnas.errors import ConfigError, RunDirectoryError
from ckptnas.lineage import LineageRegistry
from ckptnas.records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.results import RESULTS_FILE, ResultsWriter, build_dataset
from ckptnas.space import Architecture, SearchSpace
from ckptnas.strategies import Strategy, make_strategy
from ckptnas.training import DataPlugin, data_key, train_candidate
from ckptnas.transfer import SCRATCH, TransferPlan, plan_transfer

CONFIG_FILE = "config.toml"


def candidate_seed(seed: int, candidate_id: int) -> int:
    """The seed of one candidate's initialisation and batch order, derived from the run's."""
    return int(np.random.SeedSequence([seed, candidate_id]).generate_state(1)[0])


def default_workers() -> tuple[int, bool]:
    """Workers for a LocalCluster: one per GPU when CUDA is visible, else one per core."""
    if torch.cuda.is_available():
        return torch.cuda.device_count(), True
    return os.cpu_count() or 1, False


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run directory, or refuse if another process holds it."""
    path = run_dir / ".lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"run directory {str(run_dir)!r} is in use by another ckptnas process"
            ) from None
        yield


@contextlib.contextmanager
def connect(config: Config) -> Iterator[Client]:
    """A client for ``[cluster] scheduler``, or for a new LocalCluster on localhost."""
    if config.cluster.scheduler:
        with Client(config.cluster.scheduler) as client:
            yield client
        return
    n_gpus_or_cores, gpu = default_workers()
    n_workers = config.cluster.n_workers or n_gpus_or_cores
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            resources={"GPU": 1} if gpu else None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@dataclass
class _InFlight:
    spec: CandidateSpec
    attempt: int = 1


class Experiment:
    """One search, from its configuration to a finished run directory.

    Parameters
    ----------
    config : Config
    run_dir : str or Path
    progress : bool
        Show a progress bar (candidates done, best objective, warm-started count).
    resume : bool
        Continue the run already in ``run_dir`` instead of refusing to touch it.

    Examples
    --------
    >>> from ckptnas import Config, Experiment
    >>> config = Config().replace("experiment", max_candidates=8)    # doctest: +SKIP
    >>> ds = Experiment(config, "runs/demo").run()                    # doctest: +SKIP
    """

    def __init__(
        self, config: Config, run_dir: str | Path, progress: bool = True, resume: bool = False
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.resume = resume

    # -- set-up ----------------------------------------------------------------------------
    def _check_run_dir(self) -> None:
        d = self.run_dir
        if d.exists() and not d.is_dir():
            raise RunDirectoryError(f"run directory {str(d)!r} exists and is not a directory")
        has_run = (d / RESULTS_FILE).exists() or (d / "lineage.sqlite").exists()
        if has_run and not self.resume:
            raise RunDirectoryError(
                f"run directory {str(d)!r} already holds a run; use 'ckptnas resume {d}' to "
                "continue it, or choose another --out"
            )
        if self.resume and not (d / "lineage.sqlite").exists():
            raise RunDirectoryError(f"run directory {str(d)!r} holds no run to resume")
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RunDirectoryError(f"run directory {str(d)!r} is not writable: {exc}") from None

    def _describe_run(
        self, registry: LineageRegistry, data: TabularData, space: SearchSpace
    ) -> None:
        if not self.resume:
            (self.run_dir / CONFIG_FILE).write_text(self.config.to_toml(), encoding="utf-8")
        space_meta = space.to_dict() | {"node_names": [n.name for n in space.nodes]}
        meta = {
            "config": self.config.to_toml(),
            "space": json.dumps(space_meta),
            "dataset": data.name,
            "task": data.task,
            "metric": "accuracy" if data.task == "classification" else "r2",
            "policy": self.config.transfer.policy,
            "seed": str(self.config.experiment.seed),
        }
        for key, value in meta.items():
            registry.set_meta(key, value)

    # -- the loop --------------------------------------------------------------------------
    def run(self, client: Client | None = None) -> xr.Dataset:
        """Run (or resume) the search and return its results dataset.

        Parameters
        ----------
        client : distributed.Client, optional
            Use this client's cluster; by default one is started as ``[cluster]`` says.
        """
        self._check_run_dir()
        data = load_data(self.config.data, seed=self.config.experiment.seed)
        try:
            space = SearchSpace.from_config(self.config.space, data.input_sizes, data.output_size)
        except ValueError as exc:
            raise ConfigError(f"[space] {exc}") from None
        with run_lock(self.run_dir), LineageRegistry(self.run_dir) as registry:
            self._describe_run(registry, data, space)
            if client is not None:
                return _Loop(self, registry, space, client).run()
            with connect(self.config) as own_client:
                return _Loop(self, registry, space, own_client).run()


class _Loop:
    """The state of one run of the loop: what is in flight, what the strategy knows."""

    def __init__(
        self, experiment: Experiment, registry: LineageRegistry, space: SearchSpace, client: Client
    ) -> None:
        self.x = experiment
        self.config = experiment.config
        self.registry = registry
        self.space = space
        self.client = client
        self.key = data_key(self.config.data, self.config.experiment.seed)
        self.writer = ResultsWriter(
            experiment.run_dir,
            registry,
            self.config.training.epochs,
            self.config.experiment.flush_interval,
        )
        self.strategy: Strategy = make_strategy(self.config, space)
        self.futures: dict[Future[CandidateResult], _InFlight] = {}
        self.queue = as_completed()
        self.settings = TrainingSettings(
            epochs=self.config.training.epochs,
            batch_size=self.config.training.batch_size,
            learning_rate=self.config.training.learning_rate,
            freeze=self.config.transfer.freeze,
            device=self.config.training.device,
        )

    def _resources(self) -> dict[str, float] | None:
        workers = self.client.scheduler_info()["workers"].values()
        return {"GPU": 1} if any("GPU" in w.get("resources", {}) for w in workers) else None

    def _window(self) -> int:
        if self.config.experiment.max_in_flight:
            return self.config.experiment.max_in_flight
        return 2 * max(1, len(self.client.scheduler_info()["workers"]))

    def plan(self, arch: Architecture) -> tuple[TransferPlan, str | None]:
        """The transfer plan for a new candidate and its donor's checkpoint digest."""
        if self.config.transfer.policy == "none":
            return SCRATCH, None
        match = self.registry.best_donor(arch)
        if match is None:
            return SCRATCH, None
        donor, donor_arch, _ = match
        plan = plan_transfer(self.space, arch, donor_arch, donor)
        if not plan.is_warm:
            return SCRATCH, None
        return plan, self.registry.get(donor).checkpoint_digest

    def spec(
        self, candidate_id: int, arch: Architecture, planned: tuple[TransferPlan, str | None]
    ) -> CandidateSpec:
        plan, digest = planned
        return CandidateSpec(
            candidate_id=candidate_id,
            arch=arch,
            space=self.space.to_dict(),
            run_dir=str(self.x.run_dir.resolve()),
            data_key=self.key,
            settings=self.settings,
            seed=candidate_seed(self.config.experiment.seed, candidate_id),
            plan=plan,
            donor_digest=digest,
        )

    def submit(self, spec: CandidateSpec, attempt: int = 1) -> None:
        future = self.client.submit(
            train_candidate,
            spec,
            key=f"candidate-{spec.candidate_id}-{attempt}",
            resources=self._resources(),
            pure=False,
        )
        self.futures[future] = _InFlight(spec, attempt)
        self.queue.add(future)

    def submit_new(self) -> None:
        """Ask the strategy for an architecture, register it and submit it."""
        arch = self.strategy.ask()
        planned = self.plan(arch)
        candidate_id = self.registry.add_candidate(arch, planned[0], self.space.n_params(arch))
        self.submit(self.spec(candidate_id, arch, planned))

    def resubmit(self, candidate_id: int, arch: Architecture, attempt: int = 1) -> None:
        """Submit a registered candidate again, with a freshly chosen donor."""
        self.submit(self.spec(candidate_id, arch, self.plan(arch)), attempt)

    def replay(self) -> tuple[list[int], int, int]:
        """Teach the strategy what the registry holds; return pending ids, done and warm counts."""
        pending, done, warm = [], 0, 0
        for record in self.registry.candidates():
            self.strategy.seen.add(record.arch)
            if record.status == "pending":
                pending.append(record.id)
                continue
            done += 1
            warm += record.parent is not None
            self.strategy.tell(record.arch, record.objective)
        return pending, done, warm

    def run(self) -> xr.Dataset:
        # Every worker, including one that restarts later, builds the dataset once at start-up.
        self.client.register_plugin(DataPlugin(self.key))
        pending, done, warm = self.replay()
        budget = self.config.experiment.max_candidates
        registered = len(self.registry)
        bar = tqdm(
            total=max(budget, registered),
            initial=done,
            desc="candidates",
            unit="cand",
            disable=not self.x.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        ok = self.registry.candidates("ok")
        best = max((r.objective for r in ok), default=-math.inf)
        failed = done - len(ok)
        for candidate_id in pending:  # in flight when a previous client stopped: train again
            self.resubmit(candidate_id, self.registry.get(candidate_id).arch)
        while registered < budget and len(self.futures) < self._window():
            self.submit_new()
            registered += 1
        for future in self.queue:
            result = self._collect(future)
            if result is None:
                continue
            done += 1
            warm += result.plan.is_warm
            if result.status == "ok":
                best = max(best, result.objective)
            else:
                failed += 1
            bar.update(1)
            bar.set_postfix(best=f"{best:.4f}", warm=warm, failed=failed)
            self.writer.maybe_flush()
            while registered < budget and len(self.futures) < self._window():
                self.submit_new()
                registered += 1
        bar.close()
        self.writer.flush()
        return build_dataset(self.registry, self.config.training.epochs)

    def _collect(self, future: Future[CandidateResult]) -> CandidateResult | None:
        """Record what a finished future brought; ``None`` when the candidate was resubmitted."""
        flight = self.futures.pop(future)
        spec = flight.spec
        if future.status == "error":
            exc = future.exception()
            if flight.attempt <= self.config.experiment.max_retries:
                self.registry.add_note(
                    spec.candidate_id, f"attempt {flight.attempt} failed: {exc!r}"
                )
                self.submit(spec, flight.attempt + 1)
                return None
            result = CandidateResult(
                candidate_id=spec.candidate_id,
                status="failed",
                plan=spec.plan,
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
        else:
            result = future.result()
        future.release()
        if result.status == "donor_failed":
            assert spec.plan.donor is not None
            self.registry.mark_unusable(spec.plan.donor, result.error)
            self.registry.add_note(
                spec.candidate_id, f"donor {spec.plan.donor} rejected: {result.error}"
            )
            self.resubmit(spec.candidate_id, spec.arch, flight.attempt)
            return None
        self.registry.record(result)
        self.strategy.tell(spec.arch, result.objective)
        return result


def resume_experiment(run_dir: str | Path, progress: bool = True, **overrides: Any) -> xr.Dataset:
    """Continue a run from its directory, with its recorded configuration.

    Parameters
    ----------
    run_dir : str or Path
    progress : bool
    **overrides
        ``max_candidates`` to extend the budget.
    """
    config_path = Path(run_dir) / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirectoryError(f"{str(run_dir)!r} holds no {CONFIG_FILE}; nothing to resume")
    config = load_config(config_path)
    if overrides.get("max_candidates"):
        config = config.replace("experiment", max_candidates=overrides["max_candidates"])
    return Experiment(config, run_dir, progress=progress, resume=True).run()
