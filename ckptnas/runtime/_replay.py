"""Resuming a search: what the registry holds, taught to the loop's collaborators.

A resumed client learns every recorded candidate before it submits anything: the strategy (in
the order candidates finished), the donor index, the scheduler (in the order they were
registered) and the epoch budget. What was in flight when the previous client stopped is
trained again (pending candidates) or continued (candidates sent to more epochs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ckptnas.runtime._budget import EpochBudget
from ckptnas.runtime._objectives import objective_values
from ckptnas.search import Planner, Scheduler, Strategy, Suggestion
from ckptnas.storage import CandidateRecord, CandidateStatus, Curve, LineageRegistry


@dataclass(frozen=True)
class Replayed:
    """What a resumed client found in flight."""

    #: Candidates registered in all.
    n_registered: int
    #: Candidates registered but never recorded: trained again.
    pending: list[CandidateRecord]
    #: Candidates sent to more epochs than they have: continued.
    continuing: list[CandidateRecord]
    #: Candidates that finished, in the order they finished (as the strategy learnt them).
    finished: list[CandidateRecord]


def replay(  # noqa: PLR0913  # each collaborator that learns, named
    registry: LineageRegistry,
    strategy: Strategy,
    planner: Planner,
    scheduler: Scheduler,
    budget: EpochBudget,
    objectives: Sequence[str],
) -> Replayed:
    """Teach the strategy, the donor index, the scheduler and the budget what ``registry`` holds.

    Returns
    -------
    Replayed
    """
    records = registry.candidates()
    curves = registry.curves()
    scheduler.replay(
        [
            (r.id, r.target_epochs, [c[2] for c in curves.get(r.id, [])])
            if r.status == CandidateStatus.OK
            else (r.id, r.target_epochs, [])
            for r in sorted(records, key=lambda r: r.id)
        ]
    )
    finished = [r for r in records if r.status != CandidateStatus.PENDING]
    finished.sort(key=lambda r: (math.isnan(r.end_time), r.end_time, r.id))
    for record in records:
        strategy.seen.add(Suggestion.of(record.arch, record.hyperparameters))
    for record in finished:
        first = scheduler.candidates[record.id].first_epochs if scheduler.continues else None
        values = first_values(record, curves.get(record.id, []), first, objectives)
        strategy.tell(Suggestion.of(record.arch, record.hyperparameters), values)
    # A candidate whose checkpoint [storage] deleted is no donor (``donor_usable``): never
    # offered again.
    planner.rebuild(r for r in finished if r.status == CandidateStatus.OK)
    continuing = budget.replay(records, curves, scheduler.first_epochs)
    pending = [r for r in records if r.status == CandidateStatus.PENDING]
    return Replayed(len(records), pending, continuing, finished)


def first_values(
    record: CandidateRecord, curve: Sequence[Curve], first: int | None, objectives: Sequence[str]
) -> list[float]:
    """What the strategy learnt of a candidate when its first training ended.

    With a scheduler that continues candidates, that is after its ``first`` epochs, where every
    candidate of its rung was measured alike.
    """
    at = min(len(curve), first if first is not None else len(curve))
    if record.status != CandidateStatus.OK or not at:
        return objective_values(objectives, math.nan, math.nan, 0)
    _, val_loss, val_metric, _ = curve[at - 1]
    # The latency replayed is the last measured; the one told first is lost with the client.
    return objective_values(objectives, val_metric, val_loss, record.n_params, record.latency)
