"""The run's ``[storage]`` policy at work: what the loop tells it, what it deletes and records.

:class:`CheckpointBudget` is the loop's collaborator: told each candidate that finishes, it
counts the bytes that candidate wrote (two ``stat`` calls) and hands the decision to
:class:`~ckptnas.runtime._retention.RetentionPolicy`; after each batch, once the next tasks are
submitted (so their donors are pinned), it deletes what the policy says. A deletion is
recorded in the registry before the files go (see :mod:`ckptnas.storage._deletion`) and the
candidate is discarded from the planner, so no task is ever planned from it again; a resumed
run finishes the deletions a killed client left half done and plans from none of them.

``max_bytes`` counts room for the checkpoints of the tasks in flight: the run evicts until
what is on disk plus what those tasks are about to write fits, so that the cap holds while they
write. A task writes 4 bytes per scalar it does not share (float32, whatever the precision), 12
with the training state a continuation needs (Adam's two moments of what trains), plus
headers: the most overhead any finished task had. (Room for the largest checkpoint per task
would be simpler, but a scratch candidate writes several times what a frozen child does:
measured, that left a third of a small cap unused; the mean one task wrote let the disk
overshoot the cap by 5% while scratch candidates were in flight.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from ckptnas.config import Config, Keep
from ckptnas.runtime._records import CandidateResult, CandidateSpec
from ckptnas.runtime._retention import RetentionPolicy
from ckptnas.runtime._tasks import CandidateTasks
from ckptnas.search import Scheduler
from ckptnas.storage import (
    RECLAIMED_KEY,
    CandidateRecord,
    CandidateStatus,
    CheckpointStore,
    Deletion,
    LineageRegistry,
    Reclaimed,
    checkpoint_bytes,
    checkpoint_ids,
    delete_checkpoints,
    written_bytes,
)

logger = logging.getLogger(__name__)


class CheckpointBudget:
    """Deletes the checkpoints a run's ``[storage]`` table lets go, and records each.

    Parameters
    ----------
    config : Config
        ``[storage]``, and ``[search] population_size`` (the donor pool's size).
    registry : LineageRegistry
    scheduler : Scheduler
        Says which candidates it could still continue, and to which epochs.
    tasks : CandidateTasks
        The planner donors are discarded from, and the run directory.
    """

    def __init__(
        self, config: Config, registry: LineageRegistry, scheduler: Scheduler, tasks: CandidateTasks
    ) -> None:
        storage = config.storage
        #: Whether anything may be deleted; if not, every call returns at once.
        self.active = storage.deletes
        self.max_bytes = storage.max_bytes
        self.registry = registry
        self.scheduler = scheduler
        self.tasks = tasks
        self.store = CheckpointStore(tasks.run_dir)
        self.policy = RetentionPolicy(
            storage.keep == Keep.USEFUL, storage.keep_top, config.search.population_size
        )
        #: The checkpoints' bytes on disk, as counted: measured once, then kept up to date.
        self.bytes = 0
        #: What each kept candidate wrote, by id (versions summed): what evicting it frees,
        #: unless its children still refer to its blob.
        self._sizes: dict[int, int] = {}
        #: The most bytes a finished task wrote besides its scalars (headers, generators).
        self.overhead = 0
        #: Scalars each task in flight writes, by (candidate, start epoch): computed once.
        self._scalars: dict[tuple[int, int], int] = {}
        #: What deleting freed, this run and before (the registry's meta row).
        self.reclaimed = 0
        self._warned = False

    # -- told by the loop ------------------------------------------------------------------
    def recorded(self, spec: CandidateSpec, result: CandidateResult) -> None:
        """A candidate trained successfully (a new one, or one continued): count, decide."""
        if not self.active or result.checkpoint_digest is None:
            return
        cid = result.candidate_id
        version = spec.settings.epochs if spec.start_epoch else None
        written = written_bytes(self.store, cid, version, result.checkpoint_digest)
        self.bytes += written
        self._sizes[cid] = self._sizes.get(cid, 0) + written
        self.overhead = max(self.overhead, written - 4 * _scalars(spec, result.n_params))
        new = not spec.start_epoch
        self.policy.finished(cid, result.objective, self._continuable(cid), new)

    def replay(self, finished: Iterable[CandidateRecord]) -> None:
        """Relearn a resumed run, in the order its candidates finished; finish its deletions.

        Called before anything is planned: a candidate useless by now leaves the planner here.
        """
        if not self.active:
            return
        self.bytes = checkpoint_bytes(self.tasks.run_dir)  # once: the headers are not read
        self.reclaimed = int(self.registry.get_meta(RECLAIMED_KEY) or 0)
        deleted = []
        for r in finished:
            if r.status != CandidateStatus.OK:
                continue
            if r.checkpoint_deleted:
                deleted.append(r.id)
                if math.isfinite(r.objective):  # still one of the recent ones
                    self.policy.entered_pool(r.id)
            else:
                self.policy.finished(r.id, r.objective, self._continuable(r.id), new=True)
        # Recorded as deleted by a client killed before all their files went: they go now.
        for cid in sorted(set(deleted) & checkpoint_ids(self.tasks.run_dir)):
            self._account(delete_checkpoints(self.store, cid, self._versions(cid)))
        self._discard(self.policy.review())
        self._save_reclaimed()

    def enforce(self, specs: Iterable[CandidateSpec]) -> None:
        """Delete what the policy lets go now; ``specs`` are the tasks in flight (pinned)."""
        if not self.active:
            return
        in_flight = list(specs)
        pins = _pins(in_flight)
        self._discard(self.policy.review())
        before = self.reclaimed
        ready = self.policy.ready(pins)
        if ready:
            self._delete(ready, Deletion.USEFUL)
        if self.max_bytes:
            self._evict(pins, room=self._room(in_flight))
        if self.reclaimed != before:
            self._save_reclaimed()

    def report(self) -> None:
        """Log what is kept and what deleting reclaimed (``-v``), once the run ends."""
        if not self.active:
            return
        reclaimed = Reclaimed.of(self.registry, checkpoint_bytes(self.tasks.run_dir))
        logger.info("%s", reclaimed.describe())

    # -- deleting --------------------------------------------------------------------------
    def _evict(self, pins: set[int], room: int) -> None:
        """Delete the worst candidates nothing pins until the checkpoints fit ``max_bytes``.

        Victims are taken by what they wrote, and recorded together: one registry transaction
        a round, not one a candidate (measured: 0.45 ms each, a third of the client's time per
        candidate with instant tasks). A donor whose blob its children still use frees less
        than it wrote: another round follows.
        """
        while self.bytes + room > self.max_bytes:
            victims, expected = [], 0
            while self.bytes - expected + room > self.max_bytes:
                victim = self.policy.victim(pins)
                if victim is None:
                    break
                victims.append(victim)
                if not self._sizes.get(victim):  # written before a resume: one at a time
                    break
                expected += self._sizes[victim]
            if not victims:
                if self.bytes > self.max_bytes:  # over the cap itself, not only its room
                    self._warn_full()
                return
            self._delete(victims, Deletion.MAX_BYTES)

    def _delete(self, ids: list[int], reason: Deletion) -> None:
        """Record, then delete, these candidates' checkpoints; none is a donor from now on."""
        self.registry.mark_deleted(ids, reason)  # first: see ckptnas.storage._deletion
        for cid in ids:
            self.tasks.planner.discard(cid)
            self.tasks.digests.pop(cid, None)
            self._account(delete_checkpoints(self.store, cid, self._versions(cid)))
            self.policy.forget(cid)
            self._sizes.pop(cid, None)

    def _discard(self, ids: list[int]) -> None:
        """No task is planned from these any more (their files go once none reads them)."""
        for cid in ids:
            self.tasks.planner.discard(cid)

    def _account(self, freed: int) -> None:
        self.bytes = max(0, self.bytes - freed)
        self.reclaimed += freed

    def _save_reclaimed(self) -> None:
        self.registry.set_meta(RECLAIMED_KEY, str(self.reclaimed))

    def _warn_full(self) -> None:
        """Say once that nothing more can go: what is left is pinned."""
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "[storage] max_bytes = %d cannot be kept: the checkpoints take %d bytes and every "
            "one left is pinned (among the best keep_top, one the scheduler may continue, or "
            "read by a task in flight); the run goes on and deletes more once it can",
            self.max_bytes,
            self.bytes,
        )

    def _room(self, in_flight: list[CandidateSpec]) -> int:
        """What the tasks in flight are about to write, at most (see the module's notes)."""
        scalars = {}
        for spec in in_flight:
            key = (spec.candidate_id, spec.start_epoch)
            if key not in self._scalars:  # a space other than dense builds the model for this
                self._scalars[key] = _scalars(spec, self.tasks.space.n_params(spec.arch))
            scalars[key] = self._scalars[key]
        self._scalars = scalars  # those of tasks no longer in flight are forgotten
        return sum(4 * n + self.overhead for n in scalars.values())

    # -- what the scheduler knows ----------------------------------------------------------
    def _continuable(self, candidate_id: int) -> bool:
        """Whether the scheduler could still continue a candidate (kept, conservatively)."""
        state = self.scheduler.candidates.get(candidate_id)
        if not self.scheduler.continues or state is None:
            return False
        return not state.stopped and state.trained < self.scheduler.max_epochs

    def _versions(self, candidate_id: int) -> list[int]:
        """The epochs of the versions a candidate may have been continued to."""
        rungs = self.scheduler.rung_epochs
        state = self.scheduler.candidates.get(candidate_id)
        if not self.scheduler.continues:
            return []
        if state is None:
            return list(rungs[1:])
        return [e for e in rungs if state.first_epochs < e <= state.trained]


def _scalars(spec: CandidateSpec, n_params: int) -> int:
    """The scalars a task writes: the weights it does not share, and its training state."""
    plan, settings = spec.plan, spec.settings
    frozen = plan.n_params if settings.freeze and plan.is_warm else 0
    # A frozen tensor is shared with the donor of this run, or with the continued candidate's
    # own earlier version: never with a donor of an earlier run.
    shared = frozen if settings.dedup and (spec.start_epoch or not plan.run) else 0
    moments = 2 * (n_params - frozen) if spec.keep_state else 0
    return n_params - shared + moments


def _pins(specs: list[CandidateSpec]) -> set[int]:
    """The candidates of this run that tasks in flight read: donors, and continued ones."""
    pins = set()
    for spec in specs:
        if spec.start_epoch:
            pins.add(spec.candidate_id)
        elif spec.plan.is_warm and spec.plan.donor is not None and not spec.plan.run:
            pins.add(spec.plan.donor)
    return pins
