"""The training tasks of a search: a candidate's spec, planned from the best donor there is.

:class:`CandidateTasks` turns a new candidate, a continuation or a retry into the
:class:`~ckptnas.runtime.CandidateSpec` a worker trains. What every task carries (the space's
description, the run directory, the data key) is computed once.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ckptnas.runtime._donor_runs import DonorRun, ForeignDonor
from ckptnas.runtime._records import CandidateSpec, TrainingSettings
from ckptnas.search import SCRATCH, Planner, TransferPlan
from ckptnas.space import Architecture, ResolvedSpace
from ckptnas.storage import CandidateRecord, LineageRegistry, RunDir


def candidate_seed(seed: int, candidate_id: int) -> int:
    """The seed of one candidate's initialisation and batch order, derived from the run's."""
    return int(np.random.SeedSequence([seed, candidate_id]).generate_state(1)[0])


class CandidateTasks:
    """Builds the training task of each candidate.

    Parameters
    ----------
    registry : LineageRegistry
        Where donors' checkpoint digests are read, once each.
    space : ResolvedSpace
    planner : Planner
        The donor index and transfer policy.
    settings : TrainingSettings
        The run's training settings; each task gets its own epochs and hyperparameters.
    run_dir : RunDir
        The run directory, absolute: a worker's working directory may be another.
    data_key : str
        The key of the dataset the workers build.
    seed : int
        The run's seed.
    keep_state : bool
        Whether workers keep the training state, so that a candidate can be continued.
    """

    def __init__(  # noqa: PLR0913  # what every task carries, each named
        self,
        registry: LineageRegistry,
        space: ResolvedSpace,
        planner: Planner,
        settings: TrainingSettings,
        run_dir: RunDir,
        data_key: str,
        seed: int,
        keep_state: bool,
    ) -> None:
        self.registry = registry
        self.space = space
        self.planner = planner
        self.settings = settings
        # Per candidate, the space's description and the resolved run directory cost the
        # client 1 ms (of 7 ms) with near-instant tasks: computed once.
        self.space_dict = space.to_dict()
        self.run_dir = run_dir
        self.data_key = data_key
        self.seed = seed
        self.keep_state = keep_state
        #: Checkpoint digests of the donors, so that planning reads no registry row.
        self.digests: dict[int, str | None] = {}
        #: Donors of earlier runs by their planner key, and the key of each by (run, id).
        self.foreign: dict[int, ForeignDonor] = {}
        self._keys: dict[tuple[str, int], int] = {}

    def add_donor_runs(self, runs: list[DonorRun]) -> None:
        """Offer the trained candidates of earlier runs as donors too."""
        for run in runs:
            for donor in run.donors:
                key = self.planner.add_foreign(donor.arch, donor.objective)
                self.foreign[key] = donor
                self._keys[donor.run, donor.id] = key

    def reject(self, plan: TransferPlan, reason: str) -> None:
        """Never plan from this plan's donor again: its checkpoint could not be read.

        A donor of an earlier run is only forgotten: that run is never written to.
        """
        assert plan.donor is not None
        if plan.run:
            self.planner.discard(self._keys[plan.run, plan.donor])
            return
        self.registry.mark_unusable(plan.donor, reason)
        self.planner.discard(plan.donor)

    def plan(self, arch: Architecture) -> tuple[TransferPlan, str | None]:
        """The transfer plan for a new candidate and its donor's checkpoint digest."""
        plan = self.planner.plan(arch)
        if not plan.is_warm or plan.donor is None:
            return SCRATCH, None
        if plan.donor in self.foreign:  # a candidate of an earlier run
            donor = self.foreign[plan.donor]
            return replace(plan, donor=donor.id, run=donor.run), donor.digest
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
            data_key=self.data_key,
            settings=settings,
            seed=candidate_seed(self.seed, candidate_id),
            plan=plan,
            donor_digest=digest,
            keep_state=self.keep_state,
        )

    def again(self, record: CandidateRecord, epochs: int) -> CandidateSpec:
        """The task of a candidate that was in flight when a previous client stopped."""
        settings = self.settings.with_hyperparameters(record.hyperparameters)
        return self.spec(record.id, record.arch, replace(settings, epochs=epochs))

    def continued(self, record: CandidateRecord, done: int, epochs: int) -> CandidateSpec:
        """The task that trains a candidate on from ``done`` epochs to ``epochs``."""
        settings = self.settings.with_hyperparameters(record.hyperparameters)
        plan = SCRATCH
        if record.parent is not None:  # kept, so that the lineage still names its donor
            plan = TransferPlan(
                record.parent,
                record.transferred,
                record.prefix_length,
                record.n_params_transferred,
                run=record.parent_run,
            )
        spec = self.spec(record.id, record.arch, replace(settings, epochs=epochs), (plan, None))
        return replace(spec, start_epoch=done, own_digest=record.checkpoint_digest)
