"""The sets of states a run records: a candidate's status and search stage, a full-training init."""

from __future__ import annotations

from enum import StrEnum


class CandidateStatus(StrEnum):
    """Where a candidate (or a full-training run) stands.

    Only ``pending``, ``ok`` and ``failed`` are ever stored; ``running`` and ``donor_failed``
    are what a worker reports before the client decides what to record.
    """

    #: Registered and submitted; no result recorded yet (it trains again on resume).
    PENDING = "pending"
    #: Trained to the end; its objective is final and its checkpoint can serve as a donor.
    OK = "ok"
    #: Ended without a usable model: diverged, raised, or killed its workers too often.
    FAILED = "failed"
    #: Being trained on a worker (a result under construction, never stored).
    RUNNING = "running"
    #: The donor's checkpoint could not be read or verified, so nothing was trained; the client
    #: retries with another donor (never stored).
    DONOR_FAILED = "donor_failed"


class Init(StrEnum):
    """How a full-training run of a search candidate starts."""

    #: From random weights.
    SCRATCH = "scratch"
    #: From the weights the search left in the candidate's checkpoint.
    CHECKPOINT = "checkpoint"


#: Both inits, in the order datasets and tables list them.
INITS = tuple(Init)


class SearchStage(StrEnum):
    """How a candidate came to be proposed: the stages of the built-in strategies.

    A strategy tags each suggestion with its stage and the registry records it with the
    candidate; a strategy of one's own may use any other word.
    """

    #: Drawn at random by a strategy that never does anything else.
    RANDOM = "random"
    #: Seeded from earlier runs (``[transfer] donor_runs``): one of their best trained
    #: architectures, or a mutation of one, proposed before anything else.
    SEEDED = "seeded"
    #: Evolution: drawn at random while the population is not yet full.
    INITIAL_POPULATION = "initial population"
    #: Evolution: a mutation of the best of a sample of the population.
    MUTATION = "mutation"
    #: An Optuna sampler's random start (its startup trials, or first generation).
    STARTUP = "startup"
    #: Proposed by an Optuna sampler from the trials it has learnt.
    SAMPLER = "sampler"


class Deletion(StrEnum):
    """Why a run deleted a candidate's checkpoint (``[storage]``), as the registry records it."""

    #: ``keep = "useful"``: no candidate could be planned, continued or fully trained from it.
    USEFUL = "useful"
    #: The run's checkpoints outgrew ``max_bytes``: the worst of those not pinned went first.
    MAX_BYTES = "max_bytes"


def deleted_message(candidate_id: int, reason: str) -> str:
    """The one line that using a checkpoint deleted for ``reason`` (a :class:`Deletion`) gives."""
    whys: dict[str, str] = {
        Deletion.USEFUL: "[storage] keep = 'useful' (it was no longer a possible donor, among "
        "the best keep_top, or to be continued)",
        Deletion.MAX_BYTES: "[storage] max_bytes (the run's checkpoints outgrew it, and the "
        "worst of those no task was reading went first)",
    }
    why = whys.get(reason, f"[storage] ({reason})")
    return (
        f"candidate {candidate_id}'s checkpoint was deleted by {why}: its weights are gone, "
        "its record and curves remain"
    )
