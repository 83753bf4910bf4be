"""Stages of a search: what a strategy draws at random first, and what it proposes after.

Candidates proposed once a strategy learns from scores descend from the best candidates so far,
so they look better whatever they inherited; comparing warm-started with scratch candidates is
fair only within one stage. :func:`random_start` says how each strategy begins:

- regularized evolution draws at random until ``population_size`` candidates have finished;
- Optuna's TPE and GP samplers until ``n_startup_trials`` trials have finished;
- NSGA-II and NSGA-III make their first generation, the first ``population_size`` trials, at
  random;
- a random search (or Optuna's random and quasi-random samplers) never stops drawing at random.

A search seeded from earlier runs (``[transfer] donor_runs`` with ``seed_population``) begins
instead with their best architectures and mutations of them, the ``seeded`` stage; evolution
then has no random first population, while the others go on as above.

The strategy tags each candidate with its stage when it proposes it, and the registry records
the tag (:class:`~ckptnas.storage.SearchStage`); :func:`stages` reads it back. Runs written
before candidates were tagged have their untagged candidates' stages worked out after the fact,
by the rule above.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ckptnas.config import Config, Scheduler
from ckptnas.storage import CandidateRecord, CandidateStatus, SearchStage

#: Optuna's samplers that start at random: their class, and the option that says how long.
_OPTUNA_STARTS = {
    "tpe": ("TPESampler", "n_startup_trials"),
    "gp": ("GPSampler", "n_startup_trials"),
    "nsga2": ("NSGAIISampler", "population_size"),
    "nsga3": ("NSGAIIISampler", "population_size"),
}


@dataclass(frozen=True)
class Stage:
    """Candidates proposed the same way, at a comparable point of the search.

    Attributes
    ----------
    name : str
        What the stage is, in words (``random first population``).
    candidates : tuple of int
        Their ids.
    """

    name: str
    candidates: tuple[int, ...]


@dataclass(frozen=True)
class RandomStart:
    """How a strategy begins: ``n`` candidates at random, then candidates it learns to propose.

    Attributes
    ----------
    n : int
    by_finish : bool
        Whether the ``n`` are counted as they finish (successfully) before a candidate is
        submitted, rather than in submission order.
    first, then : str
        The two stages' names.
    evolution : bool
        Whether the strategy is evolution (its stages: initial population, mutation) rather
        than an Optuna sampler (startup, sampler).
    """

    n: int
    by_finish: bool
    first: str
    then: str
    evolution: bool = False


def _optuna_default(sampler: str, option: str) -> int:
    """The default of an Optuna sampler's option, read from Optuna itself."""
    import optuna

    cls, _ = _OPTUNA_STARTS[sampler]
    return int(inspect.signature(getattr(optuna.samplers, cls)).parameters[option].default)


def random_start(config: Config) -> RandomStart | None:
    """How the configured strategy begins, ``None`` when it draws every candidate at random."""
    search = config.search
    if search.strategy == "evolution":
        n = search.population_size
        return RandomStart(
            n,
            True,
            f"random first population (first {n} to finish)",
            "evolved: mutations of the population's best",
            evolution=True,
        )
    if search.strategy != "optuna" or search.sampler not in _OPTUNA_STARTS:
        return None
    option = _OPTUNA_STARTS[search.sampler][1]
    n = int(search.sampler_options.get(option) or _optuna_default(search.sampler, option))
    if option == "n_startup_trials":
        return RandomStart(
            n, True, f"random start (first {n} to finish)", f"proposed by {search.sampler}"
        )
    return RandomStart(
        n, False, f"random first generation (first {n})", f"bred by {search.sampler}"
    )


def stages(records: Iterable[CandidateRecord], config: Config | None) -> list[Stage]:
    """The finished candidates in stages of the search, pending candidates left out.

    Each candidate is in the stage its strategy tagged it with; the random stage comes first,
    then the learnt one, then any stage of a strategy of one's own in order of appearance. An
    untagged candidate (a run written before tags were recorded) is placed by
    :func:`derived_stages`.
    """
    ordered = sorted(records, key=lambda r: r.id)  # id order is submission order
    finished = [r for r in ordered if r.status != CandidateStatus.PENDING]
    start = random_start(config) if config is not None else None
    derived = derived_stages(ordered, start) if any(not r.stage for r in finished) else {}
    tags = [r.stage or derived[r.id] for r in finished]
    seeded = str(SearchStage.SEEDED) in tags or _seeds(config)
    names = _stage_names(start, seeded)
    fixed = [str(tag) for tag in _fixed_stages(start, seeded)]
    order = fixed + [t for t in dict.fromkeys(tags) if t not in fixed]
    found = {
        t: tuple(r.id for r, tag in zip(finished, tags, strict=True) if tag == t) for t in order
    }
    return [Stage(names.get(t, t), ids) for t, ids in found.items() if ids or t in fixed]


def _seeds(config: Config | None) -> bool:
    """Whether the configured run seeds its first population from earlier runs."""
    return (
        config is not None and bool(config.transfer.donor_runs) and config.transfer.seed_population
    )


def _fixed_stages(start: RandomStart | None, seeded: bool) -> tuple[SearchStage, ...]:
    """The stages a configured strategy goes through, listed even while empty.

    Seeded, the seeded stage comes first, and evolution has no random first population.
    """
    if start is None:
        fixed: tuple[SearchStage, ...] = (SearchStage.RANDOM,)
    elif start.evolution:
        fixed = (SearchStage.INITIAL_POPULATION, SearchStage.MUTATION)
    else:
        fixed = (SearchStage.STARTUP, SearchStage.SAMPLER)
    if not seeded:
        return fixed
    return (SearchStage.SEEDED, *(s for s in fixed if s != SearchStage.INITIAL_POPULATION))


def _stage_names(start: RandomStart | None, seeded: bool) -> dict[str, str]:
    """A stage's name in words, the configured strategy's where it says more."""
    names = {
        SearchStage.SEEDED: "seeded first population (earlier runs' best and mutations of them)",
        SearchStage.RANDOM: "drawn at random" if seeded else "all candidates (drawn at random)",
        SearchStage.INITIAL_POPULATION: "random first population",
        SearchStage.MUTATION: "evolved: mutations of the population's best",
        SearchStage.STARTUP: "random start",
        SearchStage.SAMPLER: "proposed by the sampler",
    }
    if start is not None:
        names |= dict.fromkeys((SearchStage.INITIAL_POPULATION, SearchStage.STARTUP), start.first)
        names |= dict.fromkeys((SearchStage.MUTATION, SearchStage.SAMPLER), start.then)
    return {str(tag): name for tag, name in names.items()}


def derived_stages(records: list[CandidateRecord], start: RandomStart | None) -> dict[int, str]:
    """Each finished candidate's stage worked out from the run's times, for untagged runs.

    Counted by finish, a candidate is in the random stage when fewer than ``n`` successful
    candidates had finished at its submission: the rule the strategy applies, up to the moment
    a result reaches the client. ``records`` are in id (submission) order.
    """
    finished = [r for r in records if r.status != CandidateStatus.PENDING]
    if start is None:
        return dict.fromkeys((r.id for r in finished), str(SearchStage.RANDOM))
    if start.by_finish:
        ends = np.sort(
            [
                r.end_time
                for r in finished
                if r.status == CandidateStatus.OK and math.isfinite(r.end_time)
            ]
        )
        # finished strictly before each submission
        before = [int(np.searchsorted(ends, r.submit_time)) for r in finished]
    else:
        submitted = {r.id: k for k, r in enumerate(records)}
        before = [submitted[r.id] for r in finished]
    first, then = (
        (SearchStage.INITIAL_POPULATION, SearchStage.MUTATION)
        if start.evolution
        else (SearchStage.STARTUP, SearchStage.SAMPLER)
    )
    return {
        r.id: str(first if k < start.n else then) for r, k in zip(finished, before, strict=True)
    }


def describe_strategy(config: Config) -> str:
    """The strategy and scheduler in a few words (``evolution (population 10, sample 3)``)."""
    search = config.search
    if search.strategy == "evolution":
        text = f"evolution (population {search.population_size}, sample {search.sample_size})"
    elif search.strategy == "optuna":
        text = f"optuna, sampler {search.sampler}"
    else:
        text = str(search.strategy)
    if search.scheduler != Scheduler.NONE:
        rungs = ", ".join(map(str, search.rungs(config.training.epochs)))
        text += f"; {search.scheduler} with rungs at {rungs} epochs"
    return text
