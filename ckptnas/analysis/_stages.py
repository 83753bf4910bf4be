"""Stages of a search: what a strategy draws at random first, and what it proposes after.

Candidates proposed once a strategy learns from scores descend from the best candidates so far,
so they look better whatever they inherited; comparing warm-started with scratch candidates is
fair only within one stage. :func:`random_start` says how each strategy begins:

- regularized evolution draws at random until ``population_size`` candidates have finished;
- Optuna's TPE and GP samplers until ``n_startup_trials`` trials have finished;
- NSGA-II and NSGA-III make their first generation, the first ``population_size`` trials, at
  random;
- a random search (or Optuna's random and quasi-random samplers) never stops drawing at random.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ckptnas.config import Config, Scheduler
from ckptnas.storage import CandidateRecord, CandidateStatus

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
    """

    n: int
    by_finish: bool
    first: str
    then: str


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
    """The finished candidates in stages of the search (see :func:`random_start`).

    Counted by finish, a candidate is in the random stage when fewer than ``n`` successful
    candidates had finished at its submission: the rule the strategy applies, up to the moment
    a result reaches the client. Pending candidates are left out.
    """
    ordered = sorted(records, key=lambda r: r.id)  # id order is submission order
    finished = [r for r in ordered if r.status != CandidateStatus.PENDING]
    start = random_start(config) if config is not None else None
    if start is None:
        return [Stage("all candidates (drawn at random)", tuple(r.id for r in finished))]
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
        submitted = {r.id: k for k, r in enumerate(ordered)}
        before = [submitted[r.id] for r in finished]
    drawn = tuple(r.id for r, k in zip(finished, before, strict=True) if k < start.n)
    learned = tuple(r.id for r, k in zip(finished, before, strict=True) if k >= start.n)
    return [Stage(start.first, drawn), Stage(start.then, learned)]


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
