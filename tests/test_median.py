"""The median stopping rule: its decisions, a search from TOML, and resuming one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY
from distributed import Client

from ckptnas.config import config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment
from ckptnas.search import Continue, MedianStopping, New
from ckptnas.storage import LineageRegistry


def always(epochs: int) -> bool:
    return True


def report(rule: MedianStopping, candidate: int, curve: list[float]) -> None:
    if candidate not in rule.candidates:
        rule.started(candidate, New(rule.new_epochs()))
    rule.on_result(candidate, curve)


def test_every_candidate_trains_on_until_enough_others_are_measured() -> None:
    rule = MedianStopping(1, 1, 4, min_candidates=3)
    for candidate, score in enumerate([0.5, 0.9, 0.1]):
        report(rule, candidate, [score])
    assert not any(s.stopped for s in rule.candidates.values())
    assert list(rule.due) == [0, 1, 2]
    assert rule.next(always) == Continue(0, 2)


def test_a_candidate_below_the_median_of_running_averages_is_stopped() -> None:
    rule = MedianStopping(1, 1, 4, min_candidates=3)
    for candidate, curve in enumerate([[0.2, 0.4], [0.3, 0.5], [0.6, 0.8]]):
        rule.started(candidate, New(1))
        rule.candidates[candidate].curve = curve  # measured, continued to 2 epochs
        rule.candidates[candidate].target_epochs = 2
    # Running averages at 2 epochs: 0.3, 0.4, 0.7; their median is 0.4.
    assert rule.median_at(2, besides=3) == pytest.approx(0.4)
    report(rule, 3, [0.1])  # at 1 epoch the others' averages are 0.2, 0.3, 0.6
    assert rule.candidates[3].stopped
    report(rule, 4, [0.35, 0.39])
    assert rule.candidates[4].stopped  # its best 0.39 is below 0.4
    report(rule, 5, [0.1, 0.45])
    assert not rule.candidates[5].stopped and 5 in rule.due  # the best so far counts
    report(rule, 6, [math.nan])
    assert rule.candidates[6].stopped


def test_continuations_go_one_step_at_a_time_up_to_max_epochs() -> None:
    rule = MedianStopping(2, 3, 7, min_candidates=1)
    assert rule.rung_epochs == (2, 5, 7)
    report(rule, 0, [0.5, 0.6])
    assert rule.next(always) == Continue(0, 5)
    rule.started(0, Continue(0, 5))
    assert rule.next(always) == New(2)
    report(rule, 0, [0.5, 0.6, 0.7, 0.7, 0.8])
    assert rule.next(always) == Continue(0, 7)
    rule.started(0, Continue(0, 7))
    report(rule, 0, [0.5, 0.6, 0.7, 0.7, 0.8, 0.8, 0.9])
    assert rule.next(always) == New(2) and not rule.due


def test_replay_decides_again_only_what_no_continuation_records() -> None:
    rule = MedianStopping(1, 1, 3, min_candidates=2)
    rule.replay(
        [
            (1, 1, [0.5]),
            (2, 2, [0.6]),  # sent on to 2 epochs when the client stopped: in flight
            (3, 1, [0.9]),
            (4, 1, [0.1]),
            (5, 1, []),  # pending
            (6, 3, [0.2, 0.3, 0.4]),  # done
        ]
    )
    assert rule.candidates[4].stopped
    assert list(rule.due) == [1, 3]
    assert rule.candidates[2].in_flight and rule.candidates[5].in_flight


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grace_epochs": 4}, r"grace_epochs = 4 must be below max_epochs = 4"),
        ({"step_epochs": 0}, r"step_epochs = 0 must be an integer >= 1"),
        ({"min_candidates": "3"}, r"min_candidates = '3' must be an integer >= 1"),
        ({"grace": 1}, r"'grace' is not an option of scheduler 'median'"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], message: str) -> None:
    search = {"scheduler": "median", "scheduler_options": options}
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"search": search, "training": {"epochs": 4}})


MEDIAN = {
    "scheduler": "median",
    "max_epochs": 4,
    "scheduler_options": {"grace_epochs": 1, "step_epochs": 1, "min_candidates": 2},
}


def _config(**experiment: int) -> Any:
    table = {key: dict(value) for key, value in TINY.items()}
    table["search"] |= MEDIAN
    table["experiment"] |= experiment
    return config_from_dict(table)


def test_median_search_from_toml(tmp_path: Path, client: Client) -> None:
    config = _config(max_candidates=8, max_in_flight=2, max_training_epochs=24)
    ds = Experiment(config, tmp_path, progress=False).run(client)
    trained = ds["epochs_trained"].values
    assert ds.sizes["candidate"] <= 8 and int(trained.sum()) <= 24
    assert set(trained) <= {1, 2, 3, 4} and (trained == 4).any()
    assert list(ds["rung"].values) == [t - 1 for t in trained]
    assert list(ds["rung"].attrs["rung_epochs"]) == [1, 2, 3, 4]
    with LineageRegistry(tmp_path, readonly=True) as registry:
        for record in registry.candidates():
            assert record.target_epochs == len(registry.curve(record.id))


def test_median_resume_continues_a_candidate_in_flight(tmp_path: Path, client: Client) -> None:
    Experiment(_config(max_candidates=4), tmp_path, progress=False).run(client)
    with LineageRegistry(tmp_path) as registry:
        # As if the client had stopped right after sending a candidate on by one epoch.
        stopped = min(registry.candidates(), key=lambda r: (r.target_epochs, r.id))
        registry.set_target_epochs(stopped.id, stopped.target_epochs + 1)
    resumed = Experiment(_config(max_candidates=6), tmp_path, progress=False, resume=True)
    ds = resumed.run(client)
    assert list(ds["candidate"].values) == list(range(1, 7))
    assert (ds["status"] == "ok").all()
    assert int(ds["epochs_trained"].sel(candidate=stopped.id)) > stopped.target_epochs
    with LineageRegistry(tmp_path, readonly=True) as registry:
        for record in registry.candidates():
            assert record.target_epochs == len(registry.curve(record.id))
