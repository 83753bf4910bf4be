"""Asynchronous Hyperband: brackets, their promotions, a search from TOML, and resuming one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY
from distributed import Client

from ckptnas.config import config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment
from ckptnas.search import Continue, Hyperband, New
from ckptnas.storage import LineageRegistry


def always(epochs: int) -> bool:
    return True


def start(hyperband: Hyperband, candidate: int) -> New:
    """Start a new candidate, whatever promotion is due."""
    decision = New(hyperband.new_epochs())
    hyperband.started(candidate, decision)
    return decision


def test_new_candidates_fill_brackets_as_synchronous_hyperband_would() -> None:
    hyperband = Hyperband(1, 9, 3)  # rungs 1, 3, 9: brackets of 9, 5 and 3 per cycle
    epochs = [start(hyperband, c).epochs for c in range(17)]
    assert Counter(epochs) == {1: 9, 3: 5, 9: 3}
    assert epochs[:4] == [1, 3, 1, 9]  # interleaved, not one bracket after another
    assert [hyperband.candidates[c].bracket for c in range(4)] == [0, 1, 0, 2]


def test_promotions_stay_within_a_bracket() -> None:
    hyperband = Hyperband(1, 4, 2, brackets=2)  # bracket 0 starts at 1 epoch, bracket 1 at 2
    scores = {}
    for candidate in range(7):
        decision = start(hyperband, candidate)
        scores[candidate] = 0.1 * candidate
        hyperband.on_result(candidate, [scores[candidate]] * decision.epochs)
    bracket_of = {c: s.bracket for c, s in hyperband.candidates.items()}
    promoted = hyperband.next(always)
    assert isinstance(promoted, Continue)
    # The best of bracket 0's one-epoch results goes to 2 epochs; bracket 1's to 4 first.
    best_1 = max((c for c in bracket_of if bracket_of[c] == 1), key=scores.__getitem__)
    assert promoted == Continue(best_1, 4)
    hyperband.started(best_1, promoted)
    best_0 = max((c for c in bracket_of if bracket_of[c] == 0), key=scores.__getitem__)
    assert hyperband.next(always) == Continue(best_0, 2)
    assert [hyperband.rung_of(e) for e in (1, 2, 4)] == [0, 1, 2]


def test_replay_finds_every_bracket_and_promotion_again() -> None:
    live = Hyperband(1, 4, 2)
    recorded = []
    for candidate in range(1, 9):
        decision = start(live, candidate)
        curve = [0.05 * candidate] * decision.epochs
        live.on_result(candidate, curve)
        recorded.append((candidate, decision.epochs, curve))
    step = live.next(always)
    assert isinstance(step, Continue)
    live.started(step.candidate_id, step)
    recorded = [(c, step.epochs if c == step.candidate_id else t, v) for c, t, v in recorded]
    resumed = Hyperband(1, 4, 2)
    resumed.replay(recorded)
    assert {c: s.bracket for c, s in resumed.candidates.items()} == {
        c: s.bracket for c, s in live.candidates.items()
    }
    assert resumed.next(always) == live.next(always)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"brackets": 4}, r"brackets = 4 must not exceed the 3 rungs"),
        ({"brackets": 0}, r"brackets = 0 must be an integer >= 1"),
        ({"bracket": 2}, r"'bracket' is not an option of scheduler 'hyperband'"),
    ],
)
def test_bad_brackets_name_the_key(options: dict[str, Any], message: str) -> None:
    search = {"scheduler": "hyperband", "max_epochs": 4, "reduction_factor": 2}
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"search": search | {"scheduler_options": options}})


HYPERBAND = {
    "scheduler": "hyperband",
    "min_epochs": 1,
    "max_epochs": 4,
    "reduction_factor": 2,
    "scheduler_options": {"brackets": 3},
}


def _config(**experiment: int) -> Any:
    table = {key: dict(value) for key, value in TINY.items()}
    table["search"] |= HYPERBAND
    table["experiment"] |= experiment
    return config_from_dict(table)


def test_hyperband_search_from_toml(tmp_path: Path, client: Client) -> None:
    config = _config(max_candidates=10, max_in_flight=2, max_training_epochs=30)
    ds = Experiment(config, tmp_path, progress=False).run(client)
    trained = ds["epochs_trained"].values
    assert ds.sizes["candidate"] <= 10 and int(trained.sum()) <= 30
    assert set(trained) <= {1, 2, 4} and (trained == 2).any() and (trained == 4).any()
    assert list(ds["rung"].values) == [{1: 0, 2: 1, 4: 2}[t] for t in trained]
    assert list(ds["rung"].attrs["rung_epochs"]) == [1, 2, 4]
    curves = ds["val_metric"].values
    assert (ds["objective"].values == curves[np.arange(len(trained)), trained - 1]).all()
    with LineageRegistry(tmp_path, readonly=True) as registry:
        for record in registry.candidates():
            assert record.target_epochs == len(registry.curve(record.id))


def test_hyperband_resume_continues_a_promotion_in_flight(tmp_path: Path, client: Client) -> None:
    Experiment(_config(max_candidates=5), tmp_path, progress=False).run(client)
    with LineageRegistry(tmp_path) as registry:
        # As if the client had stopped right after promoting a one-epoch candidate.
        stopped = next(r for r in registry.candidates() if r.target_epochs == 1)
        registry.set_target_epochs(stopped.id, 2)
    resumed = Experiment(_config(max_candidates=8), tmp_path, progress=False, resume=True)
    ds = resumed.run(client)
    assert list(ds["candidate"].values) == list(range(1, 9))
    assert (ds["status"] == "ok").all()
    assert int(ds["epochs_trained"].sel(candidate=stopped.id)) >= 2
    with LineageRegistry(tmp_path, readonly=True) as registry:
        for record in registry.candidates():
            assert record.target_epochs == len(registry.curve(record.id))
