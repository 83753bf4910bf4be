"""The search loop: ask the strategy, find the donor, submit to Dask, record what returns.

:class:`Loop` keeps a window of candidates in flight (see :class:`~ckptnas.runtime.Submitter`)
and submits a new one each time one finishes, never the whole search at once. A worker that
dies costs the candidate an attempt; a donor whose checkpoint turns out to be broken is
dropped and the candidate is planned again from another.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from distributed import Client

from ckptnas.errors import RunDirectoryError
from ckptnas.runtime._progress import Progress
from ckptnas.runtime._records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.runtime._submit import Outcome, Submitter
from ckptnas.runtime._worker import DataPlugin, data_key
from ckptnas.search import SCRATCH, Planner, Strategy, TransferPlan, make_strategy
from ckptnas.space import Architecture, ResolvedSpace
from ckptnas.storage import CandidateStatus, LineageRegistry, ResultsWriter

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
        self.writer = ResultsWriter(
            experiment.run_dir,
            registry,
            self.config.training.epochs,
            self.config.experiment.flush_interval,
        )
        self.strategy: Strategy = make_strategy(self.config, space)
        self.donors = Planner(self.config.transfer.policy, space)
        self.tasks: Submitter[CandidateSpec, CandidateResult] = Submitter(
            client, experiment.trainer, _task_name, window=self.config.experiment.max_in_flight
        )
        self.settings = TrainingSettings(
            epochs=self.config.training.epochs,
            batch_size=self.config.training.batch_size,
            learning_rate=self.config.training.learning_rate,
            freeze=self.config.transfer.freeze,
            device=self.config.training.device,
        )

    # -- planning and submitting -----------------------------------------------------------
    def plan(self, arch: Architecture) -> tuple[TransferPlan, str | None]:
        """The transfer plan for a new candidate and its donor's checkpoint digest."""
        plan = self.donors.plan(arch)
        if not plan.is_warm or plan.donor is None:
            return SCRATCH, None
        return plan, self.registry.get(plan.donor).checkpoint_digest

    def spec(
        self,
        candidate_id: int,
        arch: Architecture,
        planned: tuple[TransferPlan, str | None] | None = None,
    ) -> CandidateSpec:
        """A candidate's training task, planned from the best donor there is now by default."""
        plan, digest = planned or self.plan(arch)
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

    def submit_new(self) -> None:
        """Ask the strategy for an architecture, register it and submit it."""
        arch = self.strategy.ask()
        planned = self.plan(arch)
        candidate_id = self.registry.add_candidate(arch, planned[0], self.space.n_params(arch))
        self.tasks.submit(self.spec(candidate_id, arch, planned))

    def fill(self) -> None:
        """Submit new candidates until the window is full or the budget is spent."""
        while len(self.registry) < self.config.experiment.max_candidates and self.tasks.has_room():
            self.submit_new()

    def replay(self) -> list[int]:
        """Teach the strategy and the donor index what the registry holds.

        The strategy learns finished candidates in the order they finished. Returns the ids of
        candidates that were in flight when a previous client stopped.
        """
        records = self.registry.candidates()
        finished = [r for r in records if r.status != CandidateStatus.PENDING]
        finished.sort(key=lambda r: (math.isnan(r.end_time), r.end_time, r.id))
        for record in records:
            self.strategy.seen.add(record.arch)
        for record in finished:
            self.strategy.tell(record.arch, record.objective)
        self.donors.rebuild(r for r in finished if r.status == CandidateStatus.OK)
        return [r.id for r in records if r.status == CandidateStatus.PENDING]

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> xr.Dataset:
        """Run the search to its budget; return the final results dataset."""
        # Every worker, including one that restarts later, builds the dataset once at start-up.
        self.client.register_plugin(DataPlugin(self.key))
        pending = self.replay()
        progress = Progress(self.registry, self.config.experiment.max_candidates, self.x.progress)
        for candidate_id in pending:  # in flight when a previous client stopped: train again
            self.tasks.submit(self.spec(candidate_id, self.registry.get(candidate_id).arch))
        self.fill()
        try:
            with progress.routing_logs():
                self._collect_all(progress)
        except BaseException:
            # Stopped early: keep what was recorded; what is still running trains on resume.
            self.tasks.cancel()
            with contextlib.suppress(OSError):  # the error that stopped the run matters more
                self.writer.flush()
            raise
        finally:
            progress.close()
        return self.writer.flush()

    def _collect_all(self, progress: Progress) -> None:
        for outcome in self.tasks.outcomes():
            result = self._collect(outcome)
            self.fill()  # the workers get their next candidates before results.nc is written
            if result is not None:
                progress.update(result)
                if len(self.tasks):  # the last result is written once, at the end
                    self.writer.maybe_flush()

    def _collect(self, outcome: Outcome[CandidateSpec, CandidateResult]) -> CandidateResult | None:
        """Record what a finished task brought; ``None`` when the candidate was resubmitted."""
        spec = outcome.spec
        result = outcome.result
        if outcome.error is not None:
            result = self._failed_task(outcome)
            if result is None:
                return None
        assert result is not None
        if result.status == CandidateStatus.DONOR_FAILED:
            self._reject_donor(spec, result.error)
            self.tasks.submit(self.spec(spec.candidate_id, spec.arch), outcome.attempt)
            return None
        self.registry.record(result)
        if result.status == CandidateStatus.OK:
            self.donors.add(result.candidate_id, spec.arch, result.objective)
        self.strategy.tell(spec.arch, result.objective)
        return result

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
            self.tasks.submit(spec, outcome.attempt + 1)
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
