"""The search loop: ask the scheduler and the strategy, submit to Dask, record what returns.

:class:`Loop` keeps a window of candidates in flight (see :class:`~ckptnas.runtime.Submitter`)
and submits new ones as others finish, never the whole search at once. What finished while the
client was busy is handled as one batch: recorded in one registry transaction, then replaced
by candidates registered in one transaction and submitted in one message. A worker that dies
costs the candidate an attempt; a donor whose checkpoint turns out to be broken is dropped and
the candidate is planned again from another. The loop is handed its collaborators (strategy,
scheduler, planner, registry, results writer, listeners, submitter) and knows nothing of what
built them.
"""

from __future__ import annotations

import errno
import logging
import math
from dataclasses import replace

import xarray as xr
from distributed import Client

from ckptnas.config import Config
from ckptnas.errors import RunDirectoryError, SearchFailedError
from ckptnas.runtime._budget import EpochBudget
from ckptnas.runtime._checkpoint_budget import CheckpointBudget
from ckptnas.runtime._deadline import TaskTimeoutError
from ckptnas.runtime._failures import SAME_FAILURES, SameFailure
from ckptnas.runtime._listener import Listeners
from ckptnas.runtime._objectives import objective_values
from ckptnas.runtime._progress import Progress
from ckptnas.runtime._records import CandidateResult, CandidateSpec
from ckptnas.runtime._replay import replay
from ckptnas.runtime._signals import interrupts_deferred
from ckptnas.runtime._submit import Outcome, Submitter
from ckptnas.runtime._tasks import CandidateTasks
from ckptnas.runtime._worker import donor_cache_totals, log_donor_cache
from ckptnas.search import Continue, New, Planner, Scheduler, Strategy, Suggestion
from ckptnas.storage import (
    CURVE_NAMES,
    CandidateStatus,
    LineageRegistry,
    ResultsWriter,
    RunDir,
    checkpoint_usage,
)

logger = logging.getLogger(__name__)

#: Errors writing a checkpoint that no retry can cure: the run stops and can be resumed later.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}


class Loop:
    """The state of one run of the loop: what is in flight, what the strategy knows.

    Parameters
    ----------
    config : Config
        The run's budgets, retries and objectives.
    registry : LineageRegistry
        The run's registry, open for writing.
    client : distributed.Client
    strategy : Strategy
        What proposes new candidates.
    scheduler : Scheduler
        What decides how long candidates train, and which one trains on.
    tasks : CandidateTasks
        What builds each candidate's training task (it holds the planner).
    submitter : Submitter
        The window of tasks in flight on the cluster.
    writer : ResultsWriter
        Writes ``results.nc``.
    listeners : Listeners
        Told when the run starts and each time ``results.nc`` is written.
    progress : bool
        Show a progress bar.
    run_dir : RunDir
        The run directory, named in errors.
    """

    def __init__(  # noqa: PLR0913  # the collaborators, each handed over by keyword
        self,
        *,
        config: Config,
        registry: LineageRegistry,
        client: Client,
        strategy: Strategy,
        scheduler: Scheduler,
        tasks: CandidateTasks,
        submitter: Submitter[CandidateSpec, CandidateResult],
        writer: ResultsWriter,
        listeners: Listeners,
        progress: bool,
        run_dir: RunDir,
    ) -> None:
        self.config = config
        self.registry = registry
        self.client = client
        self.strategy = strategy
        self.scheduler = scheduler
        self.tasks = tasks
        self.submitter = submitter
        self.writer = writer
        self.listeners = listeners
        self.progress = progress
        self.run_dir = run_dir
        self.budget = EpochBudget(config.experiment.max_training_epochs)
        #: The suggestion each candidate in flight came from, to tell the strategy its values.
        self.suggestions: dict[int, Suggestion] = {}
        #: Candidates registered, kept here rather than counted in the registry each time.
        self.n_registered = 0
        #: Tasks of the batch being collected to submit again, with their attempt number.
        self.resubmit: list[tuple[CandidateSpec, int]] = []
        self._cache_before = (0, 0)
        self._verbose = False
        #: Stops the run when its first candidates all fail alike (the environment's error).
        self.same_failure = SameFailure(min(SAME_FAILURES, config.experiment.max_candidates))
        #: Deletes the checkpoints ``[storage]`` lets go (does nothing by default).
        self.retention = CheckpointBudget(config, registry, scheduler, tasks)

    @property
    def planner(self) -> Planner:
        """The donor index and transfer policy."""
        return self.tasks.planner

    # -- deciding and submitting -----------------------------------------------------------
    def new_spec(self, decision: New) -> CandidateSpec:
        """Ask the strategy for a candidate and register it; returns its task to submit."""
        suggestion = self.strategy.ask()
        arch = suggestion.arch
        settings = self.tasks.settings.with_hyperparameters(suggestion.hyperparameters)
        settings = replace(settings, epochs=decision.epochs)
        planned = self.tasks.plan(arch)
        candidate_id = self.registry.add_candidate(
            arch,
            planned[0],
            self.tasks.space.n_params(arch),
            hyperparameters=suggestion.hyperparameters,
            target_epochs=settings.epochs,
            stage=suggestion.stage,
        )
        self.n_registered += 1
        self.suggestions[candidate_id] = suggestion
        self.budget.started(settings.epochs)
        self.scheduler.started(candidate_id, decision)
        return self.tasks.spec(candidate_id, arch, settings, planned)

    def continue_spec(self, decision: Continue) -> CandidateSpec:
        """Record a continuation; returns the task training the candidate on from its checkpoint."""
        done = self.budget.continued(decision.candidate_id, decision.epochs)
        self.scheduler.started(decision.candidate_id, decision)
        self.registry.set_target_epochs(decision.candidate_id, decision.epochs)
        record = self.registry.get(decision.candidate_id)
        return self.tasks.continued(record, done, decision.epochs)

    def next_spec(self) -> CandidateSpec | None:
        """The task of what the scheduler decides next, ``None`` when nothing is to run."""
        decision = self.scheduler.next(self.budget.affordable)
        if isinstance(decision, Continue):
            return self.continue_spec(decision)
        if decision is None or self.n_registered >= self.config.experiment.max_candidates:
            return None
        return self.new_spec(decision)

    def fill(self) -> None:
        """Submit what the scheduler decides until the window is full or budgets are spent.

        The tasks are registered in one transaction, committed before any is submitted: a
        client that dies between the two leaves candidates that a resumed run trains, never a
        task the registry does not know.
        """
        with interrupts_deferred(), self.registry.batch():
            specs = self._register_next()
        self.submitter.submit_many([(spec, 1) for spec in specs])

    def _register_next(self) -> list[CandidateSpec]:
        """Register what the scheduler decides next, as many as the window has room for."""
        specs: list[CandidateSpec] = []
        for _ in range(self.submitter.room() - len(self.resubmit)):
            spec = self.next_spec()
            if spec is None:
                break
            specs.append(spec)
        return specs

    def resume(self) -> None:
        """Learn what the registry holds and submit what was in flight when a client stopped."""
        found = replay(
            self.registry,
            self.strategy,
            self.planner,
            self.scheduler,
            self.budget,
            self.config.search.objectives,
        )
        self.n_registered = found.n_registered
        self.retention.replay(found.finished)  # before any task is planned
        for record in found.pending:  # in flight when a previous client stopped: train again
            epochs = record.target_epochs or self.scheduler.first_epochs
            self.submitter.submit(self.tasks.again(record, epochs))
        for record in found.continuing:  # sent on when a previous client stopped: continue
            done = self.budget.trained[record.id]
            self.submitter.submit(self.tasks.continued(record, done, record.target_epochs))

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> xr.Dataset:
        """Run the search to its budget; return the final results dataset."""
        # What the end of the run logs with -v only; each such look asks every worker, 5-10 ms.
        self._verbose = logger.isEnabledFor(logging.INFO)
        if self._verbose:
            self._cache_before = donor_cache_totals(self.client)  # they may have served others
        self.resume()
        self.fill()
        progress: Progress | None = None
        try:
            # Once the workers have their first candidates, and before the progress bar is
            # drawn: what listeners print at start-up comes above it.
            self.listeners.run_started(self.registry, self.client)
            progress = Progress(self.registry, self.config.experiment.max_candidates, self.progress)
            with progress.routing_logs():
                self._collect_all(progress)
        except BaseException:
            # Stopped early: keep what was recorded; what is still running trains on resume.
            self.submitter.cancel()
            self._flush_while_stopping()
            raise
        finally:
            if progress is not None:
                progress.close()
        if self._verbose:
            log_donor_cache(self.client, self._cache_before)
            if self.config.transfer.freeze:  # only frozen tensors are ever stored once
                logger.info("%s", checkpoint_usage(self.tasks.run_dir).describe())
        self.retention.report()
        with interrupts_deferred():
            ds = self.writer.flush()
        self.listeners.results_written(self.registry, running=False)
        return ds

    def _flush_while_stopping(self) -> None:
        """Write results.nc for a run that stops; what stopped it matters more than a failure.

        An interrupt can land inside a registry read, leaving its statement open, and then the
        write's WAL checkpoint fails ("database table is locked"): that must not replace the
        interrupt. Resume rewrites results.nc from the registry in any case.
        """
        try:
            self.writer.flush()
            self.listeners.results_written(self.registry, running=False)
        except Exception as exc:  # said with -v only: the run's own message is the one line
            logger.info("results.nc was not rewritten while stopping: %s", exc)

    def _collect_all(self, progress: Progress) -> None:
        for batch in self.submitter.batches():
            # One transaction for the batch and for the candidates that replace it: a client
            # that dies inside it loses these results (their candidates stay pending and train
            # again on resume), never half of one, and no task is submitted before its
            # candidate is on record. One commit, and one copy of the log into the file, per
            # batch instead of two: that copy costs 4-6 ms.
            with interrupts_deferred(), self.registry.batch():
                results = [r for outcome in batch if (r := self._collect(outcome)) is not None]
                # Failing alike stops the run once these attempts are committed: nothing new.
                specs = self._register_next() if self.same_failure.verdict() is None else []
            self._stop_if_failing_alike()
            # The workers get their next candidates before results.nc is written.
            self.submitter.submit_many([*self.resubmit, *((spec, 1) for spec in specs)])
            self.resubmit.clear()
            with interrupts_deferred():  # once their donors are pinned by the tasks in flight
                self.retention.enforce(spec for spec, _ in self.submitter.in_flight.values())
            for result in results:
                progress.update(result)
            if results and len(self.submitter) and self._maybe_flush():  # last at the end
                self.listeners.results_written(self.registry, running=True)

    def _maybe_flush(self) -> bool:
        """Write results.nc if its interval has passed; a stop meanwhile waits for the write."""
        with interrupts_deferred():
            return self.writer.maybe_flush()

    def _stop_if_failing_alike(self) -> None:
        """Stop the run when its first candidates all failed with one error (see SameFailure)."""
        error = self.same_failure.verdict()
        if error is not None:
            raise SearchFailedError(
                f"{self.same_failure.threshold} candidates failed with the same error before "
                f"any succeeded, and every other would too: {error}; the run stopped (what was "
                f"recorded is kept; once this is fixed, 'ckptnas resume {self.run_dir}' goes on)"
            )

    # -- recording -------------------------------------------------------------------------
    def _collect(self, outcome: Outcome[CandidateSpec, CandidateResult]) -> CandidateResult | None:
        """Record what a finished task brought; ``None`` when the candidate was resubmitted."""
        spec = outcome.spec
        result = outcome.result
        if outcome.error is not None:
            result = self._failed_task(outcome)
            if result is None:
                return None
        assert result is not None
        if spec.start_epoch:
            self._record_continued(spec, result)
            return None
        if result.status == CandidateStatus.DONOR_FAILED:
            self._reject_donor(spec, result.error)
            replanned = self.tasks.spec(spec.candidate_id, spec.arch, spec.settings)
            self.resubmit.append((replanned, outcome.attempt))
            return None
        values = self._objective_values(result)
        self.registry.record(replace(result, objective_values=tuple(values)))
        if result.status == CandidateStatus.OK:
            self.tasks.digests[result.candidate_id] = result.checkpoint_digest
            self.planner.add(result.candidate_id, spec.arch, result.objective)
            self._reported(result, spec)
        suggestion = self.suggestions.pop(spec.candidate_id, None) or Suggestion.of(
            spec.arch, self.registry.get(spec.candidate_id).hyperparameters
        )
        self.strategy.tell(suggestion, values)
        return result

    def _objective_values(self, result: CandidateResult) -> list[float]:
        """The value of each of ``[search] objectives``: what is stored and what is told."""
        val_loss = result.val_loss[-1] if result.val_loss else math.nan
        return objective_values(
            self.config.search.objectives,
            result.objective,
            val_loss,
            result.n_params,
            result.latency,
        )

    def _reported(self, result: CandidateResult, spec: CandidateSpec) -> None:
        """Tell the budgets and the scheduler a successfully trained candidate's whole curve."""
        self.same_failure.succeeded()
        self.budget.reported(result.candidate_id, len(result.val_metric))
        self.scheduler.on_result(result.candidate_id, result.val_metric)
        self.retention.recorded(spec, result)

    def _record_continued(self, spec: CandidateSpec, result: CandidateResult) -> None:
        """Record a continued candidate's longer curve, or keep it as it was if that failed."""
        cid = spec.candidate_id
        if result.status != CandidateStatus.OK:
            logger.warning("candidate %d could not be continued: %s", cid, result.error)
            reason = f"not continued to {spec.settings.epochs} epochs: {result.error}"
            self.registry.add_note(cid, reason)
            self.registry.set_target_epochs(cid, spec.start_epoch)
            return
        before = self.registry.curve(cid)[: spec.start_epoch]
        whole = {
            name: tuple(c[k] for c in before) + getattr(result, name)
            for k, name in enumerate(CURVE_NAMES)
        }
        result = replace(result, **whole)
        result = replace(result, objective_values=tuple(self._objective_values(result)))
        self.registry.record(result, continued=True)
        self.tasks.digests.pop(cid, None)  # its checkpoint is a new version now
        self._reported(result, spec)
        self.planner.discard(cid)  # a better-trained donor now, with a new checkpoint
        if self.registry.get(cid).donor_usable:
            self.planner.add(cid, spec.arch, result.objective)

    def _failed_task(
        self, outcome: Outcome[CandidateSpec, CandidateResult]
    ) -> CandidateResult | None:
        """A task that raised: stop the run, retry it, or record it as failed."""
        exc, spec = outcome.error, outcome.spec
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            raise RunDirectoryError(
                f"cannot write to run directory {str(self.run_dir)!r}: {exc}"
            ) from exc
        self.same_failure.failed(spec.candidate_id, outcome.error_text)
        # A candidate that ran past [training] max_seconds would run as long again.
        retry = not isinstance(exc, TaskTimeoutError)
        if retry and outcome.attempt <= self.config.experiment.max_retries:
            reason = f"attempt {outcome.attempt} failed: {exc!r}"
            logger.warning("candidate %d: %s; retrying", spec.candidate_id, reason)
            self.registry.count_failed_attempt(spec.candidate_id, reason)
            self.resubmit.append((spec, outcome.attempt + 1))
            return None
        logger.warning("candidate %d failed: %s", spec.candidate_id, outcome.error_text)
        return CandidateResult(
            candidate_id=spec.candidate_id,
            status=CandidateStatus.FAILED,
            plan=spec.plan,
            error=outcome.error_text,
        )

    def _reject_donor(self, spec: CandidateSpec, reason: str) -> None:
        """Never use this spec's donor again: its checkpoint could not be read or verified."""
        donor = spec.plan.donor
        assert donor is not None
        logger.warning(
            "candidate %d: donor %d rejected (%s); planning again", spec.candidate_id, donor, reason
        )
        self.tasks.reject(spec.plan, reason)
        self.registry.add_note(spec.candidate_id, f"donor {donor} rejected: {reason}")
