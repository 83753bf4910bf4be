"""The experiment loop: ask the strategy, find the donor, submit to Dask, record what returns.

:class:`Experiment` keeps ``max_in_flight`` candidates running (twice the workers by default,
enough to hide Dask's round trip) and submits a new one each time one finishes, never the whole
search at once. Only this client writes the registry and ``results.nc``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from distributed import Client, Future, as_completed
from tqdm.auto import tqdm

from ckptnas.cluster import connect
from ckptnas.config import Config
from ckptnas.data import TabularData, load_data
from ckptnas.errors import ConfigError, RunDirectoryError
from ckptnas.lineage import LineageRegistry
from ckptnas.records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.results import RESULTS_FILE, ResultsWriter
from ckptnas.rundir import CONFIG_FILE, recorded_config, run_lock, write_atomically
from ckptnas.space import Architecture, SearchSpace
from ckptnas.strategies import Strategy, make_strategy
from ckptnas.training import DataPlugin, data_key, train_candidate
from ckptnas.transfer import SCRATCH, TransferPlan, plan_transfer

#: Seconds between two looks at the cluster's workers (see :meth:`_Loop.look_at_cluster`).
_CLUSTER_LOOK_INTERVAL = 1.0

#: Errors writing a checkpoint that no retry can cure: the run stops and can be resumed later.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}


def candidate_seed(seed: int, candidate_id: int) -> int:
    """The seed of one candidate's initialisation and batch order, derived from the run's."""
    return int(np.random.SeedSequence([seed, candidate_id]).generate_state(1)[0])


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
    trainer : callable, optional
        The function workers run for each candidate, :func:`~ckptnas.training.train_candidate`
        by default; a replacement (for instrumentation, or another training loop) takes a
        :class:`~ckptnas.records.CandidateSpec` and returns a
        :class:`~ckptnas.records.CandidateResult`.

    Examples
    --------
    >>> from ckptnas import Config, Experiment
    >>> config = Config().replace("experiment", max_candidates=8)    # doctest: +SKIP
    >>> ds = Experiment(config, "runs/demo").run()                    # doctest: +SKIP
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | Path,
        progress: bool = True,
        resume: bool = False,
        trainer: Callable[[CandidateSpec], CandidateResult] = train_candidate,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.resume = resume
        self.trainer = trainer

    # -- set-up ----------------------------------------------------------------------------
    def _refuse_unusable_run_dir(self) -> None:
        """Stop before any work if the run directory cannot take this run (writes nothing)."""
        d = self.run_dir
        if d.exists() and not d.is_dir():
            raise RunDirectoryError(f"run directory {str(d)!r} exists and is not a directory")
        has_run = (d / RESULTS_FILE).exists() or (d / "lineage.sqlite").exists()
        if has_run and not self.resume:
            raise RunDirectoryError(
                f"run directory {str(d)!r} already holds a run; use 'ckptnas resume {d}' to "
                "continue it, or choose another --out"
            )
        if self.resume and not has_run and not (d / CONFIG_FILE).exists():
            raise RunDirectoryError(f"run directory {str(d)!r} holds no run to resume")

    def _make_run_dir(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RunDirectoryError(
                f"run directory {str(self.run_dir)!r} is not writable: {exc}"
            ) from None

    def _describe_run(
        self, registry: LineageRegistry, data: TabularData, space: SearchSpace
    ) -> None:
        space_meta = space.to_dict() | {"node_names": [n.name for n in space.nodes]}
        meta = {
            "config": self.config.to_toml(),
            "space": json.dumps(space_meta),
            "dataset": data.name,
            "task": data.task,
            "metric": "accuracy" if data.task == "classification" else "r2",
            "policy": self.config.transfer.policy,
            "freeze": str(int(self.config.transfer.freeze)),
            "seed": str(self.config.experiment.seed),
        }
        registry.set_meta_many(meta)

    # -- the loop --------------------------------------------------------------------------
    def run(self, client: Client | None = None) -> xr.Dataset:
        """Run (or resume) the search and return its results dataset.

        Parameters
        ----------
        client : distributed.Client, optional
            Use this client's cluster; by default one is started as ``[cluster]`` says.
        """
        self._refuse_unusable_run_dir()
        local = client is None and not self.config.cluster.scheduler
        if self.config.training.device == "cuda" and local and not torch.cuda.is_available():
            raise ConfigError("[training] device = 'cuda' but this machine has no CUDA device")
        data = load_data(self.config.data, seed=self.config.experiment.seed)
        try:
            space = SearchSpace.from_config(self.config.space, data.input_sizes, data.output_size)
        except ValueError as exc:
            raise ConfigError(f"[space] {exc}") from None
        self._make_run_dir()
        with run_lock(self.run_dir):
            # The configuration goes to disk before the registry exists, so that a run stopped
            # at any moment afterwards can be resumed.
            write_atomically(self.run_dir / CONFIG_FILE, self.config.to_toml())
            return self._run_locked(data, space, client)

    def _run_locked(
        self, data: TabularData, space: SearchSpace, client: Client | None
    ) -> xr.Dataset:
        with LineageRegistry(self.run_dir) as registry:
            self._describe_run(registry, data, space)
            if client is not None:
                return _Loop(self, registry, space, client).run()
            with connect(self.config) as own_client:
                return _Loop(self, registry, space, own_client).run()


class _Progress:
    """The progress bar: candidates done, best objective, warm-started and failed counts."""

    def __init__(self, registry: LineageRegistry, budget: int, enabled: bool) -> None:
        finished = [r for r in registry.candidates() if r.status != "pending"]
        ok = [r for r in finished if r.status == "ok"]
        self.best = max((r.objective for r in ok), default=-math.inf)
        self.warm = sum(r.parent is not None for r in finished)
        self.failed = len(finished) - len(ok)
        self.bar = tqdm(
            total=max(budget, len(registry)),
            initial=len(finished),
            desc="candidates",
            unit="cand",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def update(self, result: CandidateResult) -> None:
        self.warm += result.plan.is_warm
        if result.status == "ok":
            self.best = max(self.best, result.objective)
        else:
            self.failed += 1
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best:.4f}", warm=self.warm, failed=self.failed)

    def close(self) -> None:
        self.bar.close()


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
        self._looked_at = -math.inf
        self.queue = as_completed()
        self.settings = TrainingSettings(
            epochs=self.config.training.epochs,
            batch_size=self.config.training.batch_size,
            learning_rate=self.config.training.learning_rate,
            freeze=self.config.transfer.freeze,
            device=self.config.training.device,
        )

    def look_at_cluster(self) -> None:
        """Size the in-flight window and the resource request from the workers there now.

        An adaptive cluster may grow or shrink during a search, so this is asked again, but at
        most every :data:`_CLUSTER_LOOK_INTERVAL` seconds: each answer is a round trip to the
        scheduler that lists every worker. Asked after every candidate, it took the client as
        long as submitting the candidate did (3 ms each on the quickstart).
        """
        now = time.monotonic()
        if now - self._looked_at < _CLUSTER_LOOK_INTERVAL:
            return
        self._looked_at = now
        workers = list(self.client.scheduler_info()["workers"].values())
        gpu = any("GPU" in w.get("resources", {}) for w in workers)
        self.resources: dict[str, float] | None = {"GPU": 1} if gpu else None
        self.window = self.config.experiment.max_in_flight or 2 * max(1, len(workers))

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
            self.x.trainer,
            spec,
            # Every submission gets a key of its own: reusing a key that was just released
            # can hand back the previous task's result instead of running the new spec.
            key=f"candidate-{spec.candidate_id}-{attempt}-{uuid.uuid4().hex[:8]}",
            resources=self.resources,
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

    def replay(self) -> list[int]:
        """Teach the strategy what the registry holds, in the order candidates finished.

        Returns the ids of candidates that were in flight when a previous client stopped.
        """
        records = self.registry.candidates()
        finished = [r for r in records if r.status != "pending"]
        finished.sort(key=lambda r: (math.isnan(r.end_time), r.end_time, r.id))
        for record in records:
            self.strategy.seen.add(record.arch)
        for record in finished:
            self.strategy.tell(record.arch, record.objective)
        return [r.id for r in records if r.status == "pending"]

    def fill(self) -> None:
        """Submit new candidates until the window is full or the budget is spent."""
        self.look_at_cluster()
        while (
            len(self.registry) < self.config.experiment.max_candidates
            and len(self.futures) < self.window
        ):
            self.submit_new()

    def run(self) -> xr.Dataset:
        # Every worker, including one that restarts later, builds the dataset once at start-up.
        self.client.register_plugin(DataPlugin(self.key))
        pending = self.replay()
        self.look_at_cluster()
        progress = _Progress(self.registry, self.config.experiment.max_candidates, self.x.progress)
        for candidate_id in pending:  # in flight when a previous client stopped: train again
            self.resubmit(candidate_id, self.registry.get(candidate_id).arch)
        self.fill()
        try:
            for future in self.queue:
                result = self._collect(future)
                self.fill()  # the workers get their next candidates before results.nc is written
                if result is not None:
                    progress.update(result)
                    if self.futures:  # the last result is written once, just below
                        self.writer.maybe_flush()
        except BaseException:
            # Stopped early: keep what was recorded; what is still running trains on resume.
            if self.futures:
                self.client.cancel(list(self.futures))
            with contextlib.suppress(OSError):  # the error that stopped the run matters more
                self.writer.flush()
            raise
        finally:
            progress.close()
        return self.writer.flush()

    def _collect(self, future: Future[CandidateResult]) -> CandidateResult | None:
        """Record what a finished future brought; ``None`` when the candidate was resubmitted."""
        flight = self.futures.pop(future)
        spec = flight.spec
        if future.status == "error":
            exc = future.exception()
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
                raise RunDirectoryError(
                    f"cannot write to run directory {str(self.x.run_dir)!r}: {exc}"
                ) from None
            if flight.attempt <= self.config.experiment.max_retries:
                self.registry.count_failed_attempt(
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


def resume_experiment(
    run_dir: str | Path, progress: bool = True, max_candidates: int | None = None
) -> xr.Dataset:
    """Continue a stopped run from its directory, with its recorded configuration.

    Finished candidates are kept, candidates that were in flight are trained again, and the
    strategy relearns every finished candidate in the order they finished.

    Parameters
    ----------
    run_dir : str or Path
    progress : bool
    max_candidates : int, optional
        A new total budget, to extend a finished run.
    """
    config = recorded_config(run_dir)
    if max_candidates:
        config = config.replace("experiment", max_candidates=max_candidates)
    return Experiment(config, run_dir, progress=progress, resume=True).run()
