"""Optuna's samplers as strategies, through its ask/tell interface.

Each variable node of the space is one categorical parameter (its choice index), each searched
hyperparameter one more parameter. Several candidates are in flight at once, so several trials
are open at once; the strategy keeps each open trial by number until its candidate reports.
Optuna is imported only when such a strategy is built.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ckptnas.search._base import Strategy, Suggestion
from ckptnas.search._hyperparameters import HyperparameterSpace
from ckptnas.search._samplers import SAMPLERS
from ckptnas.space import Architecture, ResolvedSpace, SearchSpace
from ckptnas.storage import SearchStage

if TYPE_CHECKING:
    import optuna

#: Samplers that begin at random: the option that says for how many trials, and whether those
#: are counted as they finish (a trial that failed does not count) or as they are asked.
RANDOM_STARTS = {
    "tpe": ("n_startup_trials", True),
    "gp": ("n_startup_trials", True),
    "nsga2": ("population_size", False),
    "nsga3": ("population_size", False),
}

#: Prefix of the parameter names of variable nodes, which keeps them apart from hyperparameters.
_NODE = "node:"


def make_sampler(name: str, seed: int, options: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by its ``[search] sampler`` name, seeded, with its options.

    Raises
    ------
    ValueError
        If the name is unknown or the sampler refuses an option.
    """
    sampler: optuna.samplers.BaseSampler = SAMPLERS.get(name).make(seed, options)
    return sampler


def random_start(name: str, options: Mapping[str, Any]) -> tuple[int, bool] | None:
    """How many trials a sampler draws at random first, and whether counted as they finish.

    ``None`` for a sampler without such a start (random, quasi-random). The number is the
    option's value, or Optuna's own default for it.
    """
    import optuna

    if name not in RANDOM_STARTS:
        return None
    option, by_finish = RANDOM_STARTS[name]
    if option in options:
        return int(options[option]), by_finish
    cls = getattr(optuna.samplers, SAMPLERS.get(name).class_name)
    return int(inspect.signature(cls).parameters[option].default), by_finish


class OptunaStrategy(Strategy):
    """Any Optuna sampler (TPE, NSGA-II, ...) proposing candidates through ask/tell.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
    sampler : str
        A name of :data:`~ckptnas.search.SAMPLERS`.
    sampler_options : mapping, optional
        Keyword arguments of the sampler's class (``n_startup_trials``, ``population_size``,
        ...); its seed is ``seed``.
    seed : int
    allow_duplicates : bool
    hyperparameters : HyperparameterSpace, optional
    directions : sequence of {"maximize", "minimize"}
        One per objective; two or more make a multi-objective study (use ``nsga2``).

    Notes
    -----
    A proposal turned down as already seen is told to the study as that suggestion's values
    when they are known, and as failed while they are not; a candidate learnt without an open
    trial (replayed from the registry on resume) is added to the study as a finished trial.
    A seeded architecture (:meth:`~ckptnas.search.Strategy.seed_population`) is enqueued as a
    trial (Optuna's ``enqueue_trial``) whose hyperparameters the sampler proposes; such trials
    count among a sampler's startup trials or first generation.
    """

    def __init__(  # noqa: PLR0913  # the sampler and its options, then the base's keywords
        self,
        space: SearchSpace | ResolvedSpace,
        sampler: str = "tpe",
        sampler_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        allow_duplicates: bool = False,
        hyperparameters: HyperparameterSpace | None = None,
        directions: Sequence[str] = ("maximize",),
    ) -> None:
        import optuna

        super().__init__(space, seed, allow_duplicates, hyperparameters, directions)
        # A study logs every trial it is told of at INFO level; a search reports its own way.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            sampler=make_sampler(sampler, seed, sampler_options or {}),
            directions=[optuna.study.StudyDirection[d.upper()] for d in self.directions],
        )
        self.node_params = [f"{_NODE}{node.name}" for node in space.nodes]
        self.distributions = {
            name: optuna.distributions.CategoricalDistribution(list(range(node.n_choices)))
            for name, node in zip(self.node_params, space.nodes, strict=True)
        } | self.hyperparameters.distributions()
        self.open: dict[int, optuna.Trial] = {}
        self.known: dict[Suggestion, list[float]] = {}
        self.sampler = sampler
        self.random_start = random_start(sampler, sampler_options or {})

    def propose(self) -> Suggestion:
        trial = self.study.ask(self.distributions)
        arch = tuple(int(trial.params[name]) for name in self.node_params)
        values = {name: trial.params[name] for name in self.hyperparameters.names}
        self.open[trial.number] = trial
        return Suggestion.of(arch, values, trial=trial.number, stage=self._stage(trial.number))

    def propose_seed(self, arch: Architecture) -> Suggestion:
        """The trial of a seeded architecture: enqueued with its nodes' choices, then asked."""
        self.study.enqueue_trial(dict(zip(self.node_params, arch, strict=True)))
        return replace(self.propose(), stage=SearchStage.SEEDED)

    def _stage(self, number: int) -> SearchStage:
        """Whether trial ``number`` is drawn at random (the sampler's start) or learnt."""
        if self.random_start is None:
            return SearchStage.RANDOM if self.sampler in ("random", "qmc") else SearchStage.SAMPLER
        from optuna.trial import TrialState

        n, by_finish = self.random_start
        done = (
            len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if by_finish
            else number
        )
        return SearchStage.STARTUP if done < n else SearchStage.SAMPLER

    def reject(self, suggestion: Suggestion) -> None:
        self._finish(suggestion, self.known.get(suggestion, [math.nan]))

    def tell(self, suggestion: Suggestion, values: Sequence[float]) -> None:
        super().tell(suggestion, values)
        self.known[suggestion] = list(values)
        self._finish(suggestion, values)

    def _finish(self, suggestion: Suggestion, values: Sequence[float]) -> None:
        from optuna.trial import TrialState, create_trial

        done = all(math.isfinite(v) for v in values) and len(values) == len(self.directions)
        state = TrialState.COMPLETE if done else TrialState.FAIL
        told = list(values) if done else None
        trial = self.open.pop(suggestion.trial, None) if suggestion.trial is not None else None
        if trial is not None:
            self.study.tell(trial, told, state=state)
            return
        params: dict[str, Any] = dict(zip(self.node_params, suggestion.arch, strict=True))
        params |= suggestion.hyperparameters
        self.study.add_trial(
            create_trial(state=state, values=told, params=params, distributions=self.distributions)
        )
