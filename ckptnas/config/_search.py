"""``[search]``: what proposes candidates, what it optimises, how long candidates train.

``strategy``, ``sampler`` and each of ``objectives`` name entries of the search's registries
(:mod:`ckptnas.search`); ``[search.hyperparameters]`` is checked here, against
:data:`HYPERPARAMETERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ckptnas.config._fields import Check, non_negative, option, positive, registered
from ckptnas.errors import ConfigError
from ckptnas.plugins import registry


class Scheduler(StrEnum):
    """Built-in names of ``[search] scheduler`` (how long each candidate trains).

    Any entry of the scheduler registry may be named, such as ``hyperband`` and ``median``.
    """

    #: Every candidate trains ``[training] epochs``.
    NONE = "none"
    #: Asynchronous successive halving: candidates train to rungs, the best are continued.
    ASHA = "asha"


class Direction(StrEnum):
    """One entry of ``[search] directions``."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


#: The hyperparameters ``[search.hyperparameters]`` may search: name to the check each value
#: must pass and its words in errors.
HYPERPARAMETERS: dict[str, tuple[Check, str]] = {
    "learning_rate": (positive, "> 0"),
    "weight_decay": (non_negative, ">= 0"),
    "dropout": (lambda x: 0 <= x < 1, ">= 0 and < 1"),
    "batch_size": (positive, "> 0"),
}


def rung_epochs(min_epochs: int, max_epochs: int, reduction_factor: int) -> tuple[int, ...]:
    """The epochs of each rung, lowest first.

    Examples
    --------
    >>> rung_epochs(1, 9, 3)
    (1, 3, 9)
    >>> rung_epochs(1, 10, 3)
    (1, 3, 9, 10)
    """
    if not 0 < min_epochs <= max_epochs or reduction_factor < 2:
        raise ValueError("rungs need 0 < min_epochs <= max_epochs and reduction_factor >= 2")
    rungs = [min_epochs]
    while rungs[-1] * reduction_factor <= max_epochs:
        rungs.append(rungs[-1] * reduction_factor)
    if rungs[-1] < max_epochs:
        rungs.append(max_epochs)
    return tuple(rungs)


def _objectives_ok(xs: list[str]) -> bool:
    return 0 < len(xs) == len(set(xs)) and all(x in registry("objective") for x in xs)


def _objective_words() -> str:
    names = ", ".join(registry("objective").names())
    return f"a non-empty list without repeats drawn from {names}"


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: what proposes candidates, what it optimises, how long candidates train."""

    strategy: str = registered("strategy", "evolution")
    population_size: int = option(10, lambda x: x >= 2, ">= 2")
    sample_size: int = option(3, positive, "> 0")
    mutation_bias: float = option(0.0, non_negative, ">= 0 (0: uniform over nodes)")
    sampler: str = registered("sampler", "tpe")
    sampler_options: dict[str, Any] = option({}, why="keyword arguments of the Optuna sampler")
    objectives: list[str] = field(
        default_factory=lambda: ["val_metric"],
        metadata={"check": _objectives_ok, "why": _objective_words, "registry": "objective"},
    )
    directions: list[str] = option(
        [],
        lambda xs: all(x in tuple(Direction) for x in xs),
        "a list of maximize or minimize, one per objective (empty: each objective's own)",
    )
    hyperparameters: dict[str, Any] = option(
        {}, why=f"a table of ranges or lists for {', '.join(HYPERPARAMETERS)}"
    )
    scheduler: str = registered("scheduler", Scheduler.NONE.value)
    scheduler_options: dict[str, Any] = option(
        {}, why="options of the scheduler, which checks them itself"
    )
    min_epochs: int = option(1, positive, "> 0")
    max_epochs: int = option(0, non_negative, ">= 0 (0: [training] epochs)")
    reduction_factor: int = option(3, lambda x: x >= 2, ">= 2")

    def rungs(self, training_epochs: int) -> tuple[int, ...]:
        """Epochs of each rung of the scheduler; one rung of ``training_epochs`` without."""
        scheduler = registry("scheduler").get(self.scheduler)
        epochs: tuple[int, ...] = scheduler.from_config(self, training_epochs).rung_epochs
        return epochs

    @property
    def resolved_directions(self) -> list[str]:
        """One direction per objective: as given, or each objective's own."""
        objectives = registry("objective")
        return list(self.directions) or [str(objectives.get(o).direction) for o in self.objectives]


def check_search(search: SearchConfig, training_epochs: int) -> None:
    """The checks of ``[search]`` that relate its keys to each other."""
    if search.sample_size > search.population_size:
        raise ConfigError(
            f"[search] sample_size = {search.sample_size} must not exceed "
            f"population_size = {search.population_size}"
        )
    if search.objectives[0] != "val_metric" or search.resolved_directions[0] != "maximize":
        raise ConfigError(
            f"[search] objectives = {search.objectives!r} must start with 'val_metric', "
            "maximized: it is the primary objective that summaries and top-K rank by"
        )
    if search.directions and len(search.directions) != len(search.objectives):
        raise ConfigError(
            f"[search] directions = {search.directions!r} must give one direction for each of "
            f"the {len(search.objectives)} objectives {search.objectives!r}"
        )
    for name, value in search.hyperparameters.items():
        check_hyperparameter(name, value)


def check_hyperparameter(name: str, value: Any) -> None:
    """Check one entry of ``[search.hyperparameters]``: a range table or a list of choices."""
    key = f"[search.hyperparameters] {name}"
    if name not in HYPERPARAMETERS:
        raise ConfigError(
            f"[search.hyperparameters] unknown key {name!r}; known keys: "
            f"{', '.join(sorted(HYPERPARAMETERS))}"
        )
    check, bounds = HYPERPARAMETERS[name]
    integer = name == "batch_size"
    kind = "an integer" if integer else "a number"

    def allowed(x: Any) -> bool:
        number = isinstance(x, int if integer else int | float) and not isinstance(x, bool)
        return number and bool(check(x))

    if isinstance(value, list):
        if not value or not all(allowed(x) for x in value):
            raise ConfigError(f"{key} = {value!r} must be a non-empty list, each {kind} {bounds}")
        return
    if integer or not isinstance(value, Mapping):
        what = "a list of choices" if integer else "a table {low, high, log} or a list of choices"
        raise ConfigError(f"{key} = {value!r} must be {what}")
    if set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
        raise ConfigError(f"{key} = {value!r} must have keys low, high and optionally log")
    low, high, log = value["low"], value["high"], value.get("log", False)
    if not (allowed(low) and allowed(high) and low < high):
        raise ConfigError(f"{key} = {value!r} needs low < high, both {bounds}")
    if not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError(f"{key} = {value!r}: log must be true or false, and needs low > 0")
