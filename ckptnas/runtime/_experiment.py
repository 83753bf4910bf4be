"""A search from its configuration to a finished run directory: :class:`Experiment`.

The experiment checks its inputs and the run directory, writes the configuration, opens the
registry and hands over to the loop (:mod:`ckptnas.runtime._loop`). Only this client writes the
registry and ``results.nc``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from distributed import Client

from ckptnas.config import Config, Device, Task
from ckptnas.data import DataDescription, require_data_file
from ckptnas.errors import ConfigError, RunDirectoryError
from ckptnas.runtime._connect import connect
from ckptnas.runtime._dataset import describe_on_cluster
from ckptnas.runtime._donor_runs import DonorRun, open_donor_runs, pin_donor_runs, seed_strategy
from ckptnas.runtime._failures import check_workers_load, refuse_all_failed
from ckptnas.runtime._listener import Listeners, RunListener
from ckptnas.runtime._loop import Loop
from ckptnas.runtime._records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.runtime._registry import CLUSTERS
from ckptnas.runtime._signals import interrupts_noted
from ckptnas.runtime._submit import Submitter
from ckptnas.runtime._tasks import CandidateTasks
from ckptnas.runtime._train import train_candidate
from ckptnas.runtime._worker import data_key
from ckptnas.search import Planner, Scheduler, Strategy, make_scheduler, make_strategy
from ckptnas.space import SPACES, ResolvedSpace, space_from_dict
from ckptnas.space._factory import checked_space
from ckptnas.storage import (
    CandidateStatus,
    LineageRegistry,
    ResultsWriter,
    RunDir,
    RunKind,
    RunMeta,
    recorded_config,
    refuse_unknown_candidates,
)


class Experiment:
    """One search, from its configuration to a finished run directory.

    Parameters
    ----------
    config : Config
    run_dir : str, Path or RunDir
    progress : bool
        Show a progress bar (candidates done, best objective, warm-started count).
    resume : bool
        Continue the run already in ``run_dir`` instead of refusing to touch it.
    trainer : callable, optional
        The function workers run for each candidate, :func:`~ckptnas.training.train_candidate`
        by default; a replacement (for instrumentation, or another training loop) takes a
        :class:`~ckptnas.records.CandidateSpec` and returns a
        :class:`~ckptnas.records.CandidateResult`.
    space : object, optional
        A search space object (``sample``, ``mutate``, ``build``; see
        :class:`~ckptnas.space.Space`) to search instead of the one ``[space]`` describes. It is
        pickled with cloudpickle to reach the workers.
    strategy : Strategy or callable, optional
        What proposes the candidates instead of the one ``[search]`` names: a
        :class:`~ckptnas.search.Strategy`, or a function that makes one from the run's
        :class:`~ckptnas.space.SearchSpace` (the space depends on the data, so it is built when
        the run starts). On resume the strategy relearns the recorded candidates.
    listeners : sequence of RunListener
        Told when the run starts and each time ``results.nc`` is written, such as
        :class:`ckptnas.analysis.LiveReport`, which keeps ``report.html`` up to date.
    trust_code : bool
        On resume, unpickle the space object the run recorded (running its code): only for a
        run directory you trust. Runs of the built-in spaces never need it.

    Examples
    --------
    >>> from ckptnas import Config, Experiment
    >>> config = Config().replace("experiment", max_candidates=8)    # doctest: +SKIP
    >>> ds = Experiment(config, "runs/demo").run()                    # doctest: +SKIP

    A strategy of one's own, here Optuna's TPE with options ``[search]`` does not offer:

    >>> from ckptnas.search import OptunaStrategy
    >>> tpe = lambda space: OptunaStrategy(space, sampler_options={"n_startup_trials": 4})
    >>> ds = Experiment(config, "runs/tpe", strategy=tpe).run()        # doctest: +SKIP
    """

    def __init__(  # noqa: PLR0913  # the run, then optional replacements, each a keyword
        self,
        config: Config,
        run_dir: str | Path | RunDir,
        progress: bool = True,
        resume: bool = False,
        trainer: Callable[[CandidateSpec], CandidateResult] = train_candidate,
        space: Any = None,
        strategy: Strategy | Callable[[ResolvedSpace], Strategy] | None = None,
        listeners: Sequence[RunListener] = (),
        trust_code: bool = False,
    ) -> None:
        self.config = config
        #: The run directory, wrapped once: what the loop, the stores and the workers are given.
        self.run_dir = RunDir(run_dir)
        self.progress = progress
        self.trust_code = trust_code
        self.resume = resume
        self.trainer = trainer
        self.space = space
        self._strategy = strategy
        self.strategy: Strategy | None = strategy if isinstance(strategy, Strategy) else None
        #: Set by :meth:`run` when resuming found the run's budget spent and nothing in flight.
        self.already_finished = False
        self.listeners = Listeners(listeners)
        # Whether the cluster may gain workers later; only a cluster started here may not.
        self._workers_may_join = True

    # -- set-up ----------------------------------------------------------------------------
    def _refuse_unusable_run_dir(self) -> None:
        """Stop before any work if the run directory cannot take this run (writes nothing)."""
        self.run_dir.refuse_foreign()
        kind, d = self.run_dir.kind(), self.run_dir
        if kind == RunKind.SEARCH and not self.resume:
            raise RunDirectoryError(
                f"run directory {str(d)!r} already holds a run; use 'ckptnas resume {d}' to "
                "continue it, or choose another --out"
            )
        if self.resume and kind not in (RunKind.SEARCH, RunKind.STARTED):
            raise RunDirectoryError(f"run directory {str(d)!r} holds no run to resume")

    def _describe_run(
        self, registry: LineageRegistry, data: DataDescription, space: ResolvedSpace
    ) -> None:
        registry.describe(
            RunMeta(
                config=self.config,
                space=space.to_dict() | {"node_names": space.node_names},
                dataset=data.name,
                task=data.task,
                metric="accuracy" if data.task == Task.CLASSIFICATION else "r2",
            )
        )
        # What turns raw data into what the networks see, and their outputs back: a trained
        # candidate is usable on the user's data without ckptnas's dataset code.
        data.preprocessing.save(self.run_dir)

    # -- the loop --------------------------------------------------------------------------
    def run(self, client: Client | None = None) -> xr.Dataset:
        """Run (or resume) the search and return its results dataset.

        Parameters
        ----------
        client : distributed.Client, optional
            Use this client's cluster; by default one is started as ``[cluster]`` says.

        Returns
        -------
        xarray.Dataset
            The results, also written to ``results.nc``; failed candidates have ``status``
            ``failed`` and their ``error``.

        Raises
        ------
        SearchFailedError
            If no candidate was trained: every one failed (``results.nc`` holds them), or the
            first ones all failed with the same error, which stopped the run.
        """
        with interrupts_noted():  # Ctrl-C and SIGTERM stop the run every time
            return self._run(client)

    def _run(self, client: Client | None) -> xr.Dataset:
        self._refuse_unusable_run_dir()
        local = client is None and not self.config.cluster.scheduler
        # Only the embedded cluster trains on this machine: batch jobs run on other nodes (a
        # login node with no GPU submits to a GPU partition).
        embedded = local and not CLUSTERS.get(self.config.cluster.kind).batch
        cuda = self.config.training.device == Device.CUDA
        if cuda and embedded and not torch.cuda.is_available():
            raise ConfigError("[training] device = 'cuda' but this machine has no CUDA device")
        with contextlib.ExitStack() as stack:
            # A run that exists is locked before a cluster starts, so a busy one is refused
            # at once; a new directory only once the cluster answers, so that a scheduler that
            # cannot be reached leaves nothing behind.
            existing = self.run_dir.kind() in (RunKind.SEARCH, RunKind.STARTED)
            if existing:
                self.run_dir.require_writable()
                stack.enter_context(self.run_dir.lock())
                self._refuse_lost_records()
                if self.resume and self._finished():  # no data, no cluster: nothing to train
                    self.already_finished = True
                    return refuse_all_failed(self._results_without_training())
            if local:
                # Workers started from here (embedded, or batch jobs) read this file system: a
                # missing data file is told now, not once they have started (2-12 s measured
                # for the embedded cluster's two workers, a queue's wait for batch jobs). A
                # user's cluster may see files this client does not: its workers tell.
                require_data_file(self.config.data)
            if client is None:
                client = stack.enter_context(connect(self.config))
            # The workers build the dataset (each once); the client needs only its description.
            key = data_key(self.config.data, self.config.experiment.seed)
            data = describe_on_cluster(client, key)
            space = self._make_space(data)
            donors = open_donor_runs(self.config.transfer.donor_runs, space, self.run_dir)
            check_workers_load(client, space, self.trainer)
            self.run_dir.create()
            if not existing:
                self.run_dir.require_writable()
                stack.enter_context(self.run_dir.lock())
            self._workers_may_join = not local or _workers_may_join(self.config)
            return refuse_all_failed(self._run_locked(client, data, space, key, donors))

    def _make_space(self, data: DataDescription) -> ResolvedSpace:
        """The space to search: the one given, the one a resumed run recorded, or ``[space]``."""
        if self.space is not None:
            return checked_space(self.space, list(data.input_shapes))
        recorded = self._recorded_space()
        if recorded is not None:
            return recorded
        table = self.config.space
        entry = SPACES.get(table.kind)
        try:
            space: ResolvedSpace = entry.build(table, data.input_shapes, data.output_size)
        except ValueError as exc:  # SearchSpaceError is one
            raise ConfigError(f"[space] {exc}") from None
        # A kind that makes its spaces again from a name is recorded by name, whoever built it.
        space.by_name = space.by_name or hasattr(entry, "make")
        return space

    def _recorded_space(self) -> ResolvedSpace | None:
        """A resumed run's pickled space (one given as an object, which no config describes)."""
        if not self.resume or self.run_dir.kind() != RunKind.SEARCH:
            return None
        with LineageRegistry(self.run_dir) as registry:
            if registry.get_meta("space") is None and not len(registry):
                # Stopped after the registry was made, before the run described itself: no
                # candidate to continue from, so the run starts over from its configuration.
                return None
            recorded = registry.recorded_space()
        if recorded.get("kind") != "pickled":
            return None
        return space_from_dict(recorded, self.trust_code)

    def _refuse_lost_records(self) -> None:
        """Stop a resume whose registry no longer knows candidates that the disk holds."""
        if self.run_dir.kind() == RunKind.SEARCH:
            with LineageRegistry(self.run_dir, readonly=True) as registry:
                known = [r.id for r in registry]
            refuse_unknown_candidates(self.run_dir, known)

    def _finished(self) -> bool:
        """Whether the run holds its whole budget of candidates, none of them in flight.

        A candidate being continued (successive halving) is in flight too: its curve is
        shorter than the epochs it is to reach.
        """
        if self.run_dir.kind() != RunKind.SEARCH:
            return False
        with LineageRegistry(self.run_dir) as registry:
            budget_spent = len(registry) >= self.config.experiment.max_candidates
            curves = registry.curves()
            continuing = any(
                r.target_epochs > len(curves.get(r.id, []))
                for r in registry.candidates(CandidateStatus.OK)
            )
            pending = registry.candidates(CandidateStatus.PENDING)
            return budget_spent and not pending and not continuing

    def _results_without_training(self) -> xr.Dataset:
        """The results of a finished run, ``results.nc`` rewritten from its registry."""
        with LineageRegistry(self.run_dir) as registry:
            scheduler = make_scheduler(self.config)
            return ResultsWriter(self.run_dir, registry, scheduler.max_epochs).flush()

    def _run_locked(
        self,
        client: Client,
        data: DataDescription,
        space: ResolvedSpace,
        key: str,
        donors: list[DonorRun],
    ) -> xr.Dataset:
        # The configuration goes to disk before the registry exists, so that a run stopped at
        # any moment afterwards can be resumed.
        self.run_dir.write_config(self.config)
        if self._strategy is not None and not isinstance(self._strategy, Strategy):
            self.strategy = self._strategy(space)
        with LineageRegistry(self.run_dir) as registry:
            pin_donor_runs(registry, donors)  # before any candidate: a changed donor run stops
            self._describe_run(registry, data, space)
            loop = self._loop(registry, space, client, key)
            loop.tasks.add_donor_runs(donors)
            seed_strategy(loop.strategy, donors, self.config, registry)
            return loop.run()

    def _loop(
        self, registry: LineageRegistry, space: ResolvedSpace, client: Client, key: str
    ) -> Loop:
        """The loop of this run, handed every collaborator it works with."""
        config = self.config
        scheduler: Scheduler = make_scheduler(config)
        settings = TrainingSettings(
            epochs=scheduler.first_epochs,
            batch_size=config.training.batch_size,
            learning_rate=config.training.learning_rate,
            freeze=config.transfer.freeze,
            device=config.training.device,
            precision=config.training.precision,
            dedup=config.transfer.dedup,
            measure_latency=config.training.measure_latency
            or "latency" in config.search.objectives,
        )
        tasks = CandidateTasks(
            registry,
            space,
            Planner(config.transfer.policy, space),
            settings,
            run_dir=self.run_dir.resolved(),
            data_key=key,
            seed=config.experiment.seed,
            keep_state=scheduler.continues,
        )
        submitter: Submitter[CandidateSpec, CandidateResult] = Submitter(
            client,
            self.trainer,
            _task_name,
            window=config.experiment.max_in_flight,
            timing=lambda result: (result.start_time, result.end_time),
            max_seconds=config.training.max_seconds,
            workers_may_join=self._workers_may_join,
        )
        writer = ResultsWriter(
            self.run_dir,
            registry,
            scheduler.max_epochs,
            config.experiment.flush_interval,
        )
        return Loop(
            config=config,
            registry=registry,
            client=client,
            strategy=self.strategy or make_strategy(config, space),
            scheduler=scheduler,
            tasks=tasks,
            submitter=submitter,
            writer=writer,
            listeners=self.listeners,
            progress=self.progress,
            run_dir=self.run_dir,
        )


def _workers_may_join(config: Config) -> bool:
    """Whether the cluster ``[cluster]`` starts may gain workers after it started.

    Asked of the kind's entry; one written before entries said so is taken to allow it.
    """
    kind = CLUSTERS.get(config.cluster.kind)
    may_join = getattr(kind, "workers_may_join", None)
    return True if may_join is None else bool(may_join(config))


def _task_name(spec: CandidateSpec) -> str:
    return f"candidate-{spec.candidate_id}"


def resume_experiment(
    run_dir: str | Path,
    progress: bool = True,
    max_candidates: int | None = None,
    trust_code: bool = False,
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
    trust_code : bool
        On resume, unpickle the space object the run recorded (running its code): only for a
        run directory you trust. Runs of the built-in spaces never need it.
    """
    files = RunDir(run_dir)
    files.require_writable()
    config = recorded_config(files)
    if max_candidates:
        config = config.replace("experiment", max_candidates=max_candidates)
    return Experiment(config, run_dir, progress=progress, resume=True, trust_code=trust_code).run()
