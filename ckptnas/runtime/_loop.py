"""The search loop: ask the strategy, find the donor, submit to Dask, record what returns.

:class:`Loop` keeps a window of candidates in flight (see :class:`~ckptnas.runtime.Submitter`)
and submits new ones as others finish, never the whole search at once. What finished while the
client was busy is handled as one batch: recorded in one registry transaction, then replaced
by candidates registered in one transaction and submitted in one message. A worker that dies
costs the candidate an attempt; a donor whose checkpoint turns out to be broken is dropped and
the candidate is planned again from another.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from distributed import Client

from ckptnas.errors import RunDirectoryError
from ckptnas.runtime._objectives import objective_values
from ckptnas.runtime._progress import Progress
from ckptnas.runtime._records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.runtime._rungs import Rungs
from ckptnas.runtime._submit import Outcome, Submitter
from ckptnas.runtime._worker import data_key, donor_cache_counts
from ckptnas.search import (
    SCRATCH,
    Planner,
    Promotion,
    Strategy,
    Suggestion,
    TransferPlan,
    make_strategy,
)
from ckptnas.space import Architecture, ResolvedSpace
from ckptnas.storage import (
    CURVE_NAMES,
    CandidateRecord,
    CandidateStatus,
    Curve,
    LineageRegistry,
    ResultsWriter,
    checkpoint_usage,
)

if TYPE_CHECKING:
    from ckptnas.runtime._experiment import Experiment

logger = logging.getLogger(__name__)

#: Errors writing a checkpoint that no retry can cure: the run stops and can be resumed later.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}


def candidate_seed(seed: int, candidate_id: int) -> int:
    """The seed of one candidate's initialisation and batch order, derived from the run's."""
    return int(np.random.SeedSequence([seed, candidate_id]).generate_state(1)[0])


def _task_name(spec: CandidateSpec) -> str:
    return f"candidate-{spec.candidate_id}"


class Loop:
    """The state of one run of the loop: what is in flight, what the strategy knows."""

    def __init__(
        self,
        experiment: Experiment,
        registry: LineageRegistry,
        space: ResolvedSpace,
        client: Client,
    ) -> None:
        self.x = experiment
        self.config = experiment.config
        self.registry = registry
        self.space = space
        self.client = client
        self.key = data_key(self.config.data, self.config.experiment.seed)
        self.rungs = Rungs(self.config)
        self.writer = ResultsWriter(
            experiment.run_dir,
            registry,
            self.rungs.max_epochs,
            self.config.experiment.flush_interval,
        )
        self.strategy: Strategy = experiment.strategy or make_strategy(self.config, space)
        #: The suggestion each candidate in flight came from, to tell the strategy its values.
        self.suggestions: dict[int, Suggestion] = {}
        #: Candidates being continued when a previous client stopped (found by :meth:`replay`).
        self.continuing: list[CandidateRecord] = []
        self.donors = Planner(self.config.transfer.policy, space)
        # What every task carries, computed once: per candidate, the space's description and
        # the resolved run directory cost the client 1 ms (of 7 ms) with near-instant tasks.
        self.space_dict = space.to_dict()
        self.run_dir = experiment.run_dir.resolved()
        #: Checkpoint digests of the donors, so that planning reads no registry row.
        self.digests: dict[int, str | None] = {}
        #: Candidates registered, kept here rather than counted in the registry each time.
        self.n_registered = 0
        #: Tasks of the batch being collected to submit again, with their attempt number.
        self.resubmit: list[tuple[CandidateSpec, int]] = []
        self.tasks: Submitter[CandidateSpec, CandidateResult] = Submitter(
            client,
            experiment.trainer,
            _task_name,
            window=self.config.experiment.max_in_flight,
            timing=lambda result: (result.start_time, result.end_time),
        )
        self.settings = TrainingSettings(
            epochs=self.rungs.first_epochs,
            batch_size=self.config.training.batch_size,
            learning_rate=self.config.training.learning_rate,
            freeze=self.config.transfer.freeze,
            device=self.config.training.device,
            precision=self.config.training.precision,
            dedup=self.config.transfer.dedup,
        )

    # -- planning and submitting -----------------------------------------------------------
    def plan(self, arch: Architecture) -> tuple[TransferPlan, str | None]:
        """The transfer plan for a new candidate and its donor's checkpoint digest."""
        plan = self.donors.plan(arch)
        if not plan.is_warm or plan.donor is None:
            return SCRATCH, None
        if plan.donor not in self.digests:
            self.digests[plan.donor] = self.registry.get(plan.donor).checkpoint_digest
        return plan, self.digests[plan.donor]

    def spec(
        self,
        candidate_id: int,
        arch: Architecture,
        settings: TrainingSettings,
        planned: tuple[TransferPlan, str | None] | None = None,
    ) -> CandidateSpec:
        """A candidate's training task, planned from the best donor there is now by default."""
        plan, digest = planned or self.plan(arch)
        return CandidateSpec(
            candidate_id=candidate_id,
            arch=arch,
            space=self.space_dict,
            run_dir=self.run_dir,
            data_key=self.key,
            settings=settings,
            seed=candidate_seed(self.config.experiment.seed, candidate_id),
            plan=plan,
            donor_digest=digest,
            keep_state=self.rungs.halving is not None,
        )

    def new_spec(self) -> CandidateSpec:
        """Ask the strategy for a candidate and register it; returns its task to submit."""
        suggestion = self.strategy.ask()
        arch = suggestion.arch
        settings = self.settings.with_hyperparameters(suggestion.hyperparameters)
        planned = self.plan(arch)
        candidate_id = self.registry.add_candidate(
            arch,
            planned[0],
            self.space.n_params(arch),
            hyperparameters=suggestion.hyperparameters,
            target_epochs=settings.epochs,
            stage=suggestion.stage,
        )
        self.n_registered += 1
        self.suggestions[candidate_id] = suggestion
        self.rungs.started(settings.epochs)
        return self.spec(candidate_id, arch, settings, planned)

    def continue_spec(self, record: CandidateRecord, done: int, epochs: int) -> CandidateSpec:
        """The task that trains a candidate on from ``done`` epochs to ``epochs``."""
        settings = self.settings.with_hyperparameters(record.hyperparameters)
        plan = SCRATCH
        if record.parent is not None:  # kept, so that the lineage still names its donor
            plan = TransferPlan(
                record.parent,
                record.transferred,
                record.prefix_length,
                record.n_params_transferred,
            )
        spec = self.spec(record.id, record.arch, replace(settings, epochs=epochs), (plan, None))
        return replace(spec, start_epoch=done, own_digest=record.checkpoint_digest)

    def promotion_spec(self, promotion: Promotion) -> CandidateSpec:
        """Record a candidate ASHA promoted; returns the task continuing it from its checkpoint."""
        done = self.rungs.promote(promotion)
        self.registry.set_target_epochs(promotion.candidate_id, promotion.epochs)
        record = self.registry.get(promotion.candidate_id)
        return self.continue_spec(record, done, promotion.epochs)

    def values(self, record: CandidateRecord | CandidateResult, val_loss: float) -> list[float]:
        """The objective values the strategy learns of a finished candidate."""
        return objective_values(
            self.config.search.objectives,
            record.objective,
            val_loss,
            record.n_params,
            record.latency,
        )

    def fill(self) -> None:
        """Submit promotions, then new candidates, until the window is full or budgets spent.

        They are registered in one transaction, committed before any is submitted: a client
        that dies between the two leaves candidates that a resumed run trains, never a task
        the registry does not know.
        """
        specs: list[CandidateSpec] = []
        with self.registry.batch():
            for _ in range(self.tasks.room()):
                promotion = self.rungs.next_promotion()
                if promotion is not None:
                    specs.append(self.promotion_spec(promotion))
                elif self.n_registered < self.config.experiment.max_candidates and (
                    self.rungs.affordable(self.rungs.first_epochs)
                ):
                    specs.append(self.new_spec())
                else:
                    break
        self.tasks.submit_many([(spec, 1) for spec in specs])

    def replay(self) -> list[int]:
        """Teach the strategy and the donor index what the registry holds.

        The strategy learns finished candidates in the order they finished. Returns the ids of
        candidates that were in flight when a previous client stopped.
        """
        records = self.registry.candidates()
        self.n_registered = len(records)
        curves = self.registry.curves()
        finished = [r for r in records if r.status != CandidateStatus.PENDING]
        finished.sort(key=lambda r: (math.isnan(r.end_time), r.end_time, r.id))
        for record in records:
            self.strategy.seen.add(Suggestion.of(record.arch, record.hyperparameters))
        for record in finished:
            suggestion = Suggestion.of(record.arch, record.hyperparameters)
            self.strategy.tell(suggestion, self.first_values(record, curves.get(record.id, [])))
        self.donors.rebuild(r for r in finished if r.status == CandidateStatus.OK)
        self.continuing = self.rungs.replay(records, curves)
        return [r.id for r in records if r.status == CandidateStatus.PENDING]

    def first_values(self, record: CandidateRecord, curve: Sequence[Curve]) -> list[float]:
        """What the strategy learnt of a candidate when its first training ended.

        With ASHA that is the first rung, where every candidate was measured alike.
        """
        at = min(len(curve), self.rungs.first_epochs if self.rungs.halving else len(curve))
        if record.status != CandidateStatus.OK or not at:
            return objective_values(self.config.search.objectives, math.nan, math.nan, 0)
        _, val_loss, val_metric, _ = curve[at - 1]
        # The latency replayed is the last measured; the one told first is lost with the client.
        return objective_values(
            self.config.search.objectives, val_metric, val_loss, record.n_params, record.latency
        )

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> xr.Dataset:
        """Run the search to its budget; return the final results dataset."""
        self._cache_before = self._donor_cache_totals()  # workers may have served other runs
        pending = self.replay()
        for candidate_id in pending:  # in flight when a previous client stopped: train again
            record = self.registry.get(candidate_id)
            settings = self.settings.with_hyperparameters(record.hyperparameters)
            if record.target_epochs:
                settings = replace(settings, epochs=record.target_epochs)
            self.tasks.submit(self.spec(candidate_id, record.arch, settings))
        for record in self.continuing:  # promoted when a previous client stopped: continue
            done = self.rungs.trained[record.id]
            self.tasks.submit(self.continue_spec(record, done, record.target_epochs))
        self.fill()
        progress: Progress | None = None
        try:
            # Once the workers have their first candidates, and before the progress bar is
            # drawn: what listeners print at start-up comes above it.
            self.x.listeners.run_started(self.registry, self.client)
            progress = Progress(
                self.registry, self.config.experiment.max_candidates, self.x.progress
            )
            with progress.routing_logs():
                self._collect_all(progress)
        except BaseException:
            # Stopped early: keep what was recorded; what is still running trains on resume.
            self.tasks.cancel()
            with contextlib.suppress(OSError):  # the error that stopped the run matters more
                self.writer.flush()
                self.x.listeners.results_written(self.registry, running=False)
            raise
        finally:
            if progress is not None:
                progress.close()
        self._log_donor_cache()
        if self.config.transfer.freeze:  # only frozen tensors are ever stored once
            logger.info("%s", checkpoint_usage(self.run_dir).describe())
        ds = self.writer.flush()
        self.x.listeners.results_written(self.registry, running=False)
        return ds

    def _donor_cache_totals(self) -> tuple[int, int]:
        """Donor tensor reads all workers served from memory and from files, so far."""
        try:
            counts = self.client.run(donor_cache_counts).values()
        except (OSError, TimeoutError):  # a worker gone meanwhile: nothing worth failing for
            return 0, 0
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def _log_donor_cache(self) -> None:
        """Say how many of this run's donor tensor reads came from workers' memory (``-v``)."""
        hits, misses = self._donor_cache_totals()
        hits, misses = hits - self._cache_before[0], misses - self._cache_before[1]
        if hits + misses > 0:
            logger.info(
                "donor cache: %d of %d donor tensor reads served from workers' memory (%.0f%%)",
                hits,
                hits + misses,
                100 * hits / (hits + misses),
            )

    def _collect_all(self, progress: Progress) -> None:
        for batch in self.tasks.batches():
            # One transaction for the batch: a client that dies inside it loses these results
            # (their candidates stay pending and train again on resume), never half of one.
            with self.registry.batch():
                results = [r for outcome in batch if (r := self._collect(outcome)) is not None]
            self.tasks.submit_many(self.resubmit)  # once their new attempt is on record
            self.resubmit.clear()
            self.fill()  # the workers get their next candidates before results.nc is written
            for result in results:
                progress.update(result)
            if results and len(self.tasks) and self.writer.maybe_flush():  # last one at the end
                self.x.listeners.results_written(self.registry, running=True)

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
            replanned = self.spec(spec.candidate_id, spec.arch, spec.settings)
            self.resubmit.append((replanned, outcome.attempt))
            return None
        self.registry.record(result)
        if result.status == CandidateStatus.OK:
            self.digests[result.candidate_id] = result.checkpoint_digest
            self.donors.add(result.candidate_id, spec.arch, result.objective)
            self.rungs.reported(result.candidate_id, result.val_metric)
        suggestion = self.suggestions.pop(spec.candidate_id, None) or Suggestion.of(
            spec.arch, self.registry.get(spec.candidate_id).hyperparameters
        )
        val_loss = result.val_loss[-1] if result.val_loss else math.nan
        self.strategy.tell(suggestion, self.values(result, val_loss))
        return result

    def _record_continued(self, spec: CandidateSpec, result: CandidateResult) -> None:
        """Record a promoted candidate's longer curve, or keep it as it was if that failed."""
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
        self.registry.record(result, continued=True)
        self.digests.pop(cid, None)  # its checkpoint is a new version now
        self.rungs.reported(cid, result.val_metric)
        self.donors.discard(cid)  # a better-trained donor now, with a new checkpoint
        if self.registry.get(cid).donor_usable:
            self.donors.add(cid, spec.arch, result.objective)

    def _failed_task(
        self, outcome: Outcome[CandidateSpec, CandidateResult]
    ) -> CandidateResult | None:
        """A task that raised: stop the run, retry it, or record it as failed."""
        exc, spec = outcome.error, outcome.spec
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            raise RunDirectoryError(
                f"cannot write to run directory {str(self.x.run_dir)!r}: {exc}"
            ) from None
        if outcome.attempt <= self.config.experiment.max_retries:
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
        self.registry.mark_unusable(donor, reason)
        self.registry.add_note(spec.candidate_id, f"donor {donor} rejected: {reason}")
        self.donors.discard(donor)
