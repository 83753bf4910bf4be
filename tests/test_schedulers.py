"""The scheduler protocol: the registry, plain search and the options every scheduler checks."""

from __future__ import annotations

import pytest

from ckptnas.config import config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.plugins import registry
from ckptnas.search import (
    ASHA,
    Continue,
    Hyperband,
    MedianStopping,
    New,
    PlainScheduler,
    make_scheduler,
)


def always(epochs: int) -> bool:
    return True


def test_scheduler_registry_lists_the_built_in_schedulers() -> None:
    schedulers = registry("scheduler")
    assert schedulers.names()[:4] == ("none", "asha", "hyperband", "median")
    assert schedulers.get("median") is MedianStopping


@pytest.mark.parametrize(
    ("search", "kind"),
    [
        ({}, PlainScheduler),
        ({"scheduler": "asha"}, ASHA),
        ({"scheduler": "hyperband"}, Hyperband),
        ({"scheduler": "median"}, MedianStopping),
    ],
)
def test_make_scheduler_builds_the_one_named(search: dict[str, str], kind: type) -> None:
    config = config_from_dict({"search": search, "training": {"epochs": 4}})
    assert type(make_scheduler(config)) is kind


def test_an_unknown_scheduler_names_those_installed() -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict({"search": {"scheduler": "bohb"}})
    assert str(error.value) == (
        "[search] scheduler = 'bohb' must be one of none, asha, hyperband, median"
    )


@pytest.mark.parametrize("scheduler", ["none", "asha"])
def test_options_a_scheduler_does_not_take_are_refused(scheduler: str) -> None:
    search = {"scheduler": scheduler, "scheduler_options": {"brackets": 2}}
    with pytest.raises(ConfigError, match=r"\[search.scheduler_options\] 'brackets' is not an"):
        config_from_dict({"search": search, "training": {"epochs": 4}})


def test_plain_search_trains_every_candidate_once_and_never_continues() -> None:
    plain = PlainScheduler(3)
    for candidate in range(4):
        decision = plain.next(always)
        assert decision == New(3)
        plain.started(candidate, decision)
        plain.on_result(candidate, [0.1 * candidate] * 3)
    assert plain.next(lambda epochs: epochs <= 2) is None  # the budget has no room
    assert plain.rung_epochs == (3,) and not plain.continues


def test_asha_decides_through_the_protocol_and_counts_rungs() -> None:
    asha = ASHA(1, 9, 3)
    for candidate, score in enumerate([0.1, 0.5, 0.3]):
        asha.started(candidate, asha.next(always))  # type: ignore[arg-type]
        asha.on_result(candidate, [score])
    assert asha.next(always) == Continue(1, 3)
    # A continuation the budget cannot pay for (2 more epochs) gives way to a new candidate.
    assert asha.next(lambda epochs: epochs <= 1) == New(1)
    assert asha.next(lambda epochs: False) is None
    asha.started(1, Continue(1, 3))
    assert asha.next(always) == New(1)
    assert [asha.rung_of(e) for e in (0, 1, 2, 3, 9)] == [-1, 0, 0, 1, 2]


def test_asha_replay_knows_what_was_promoted() -> None:
    asha = ASHA(1, 4, 2)
    asha.replay([(1, 1, [0.1]), (2, 2, [0.5]), (3, 1, [])])
    assert asha.candidates[2].in_flight and not asha.candidates[1].in_flight
    assert asha.next(always) == New(1)  # 2 was promoted already, 3 is pending
