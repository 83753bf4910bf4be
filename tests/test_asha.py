"""Asynchronous successive halving: the promotion rule, and runs that stop and continue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from ckptnas.config import Config, config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment
from ckptnas.search import Promotion, SuccessiveHalving, rung_epochs
from ckptnas.storage import CheckpointStore, LineageRegistry


@pytest.mark.parametrize(
    ("low", "high", "eta", "rungs"),
    [(1, 9, 3, (1, 3, 9)), (1, 10, 3, (1, 3, 9, 10)), (2, 4, 2, (2, 4)), (1, 2, 3, (1, 2))],
)
def test_rungs_grow_by_the_reduction_factor_up_to_max_epochs(
    low: int, high: int, eta: int, rungs: tuple[int, ...]
) -> None:
    assert rung_epochs(low, high, eta) == rungs


def test_the_best_third_of_a_rung_is_promoted_one_at_a_time() -> None:
    asha = SuccessiveHalving(1, 9, 3)
    scores = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2]
    for candidate, score in enumerate(scores[:2]):
        asha.report(candidate, [score])
    assert asha.next_promotion() is None  # 2 results: the top third is empty
    asha.report(2, [scores[2]])
    assert asha.next_promotion() == Promotion(1, 3)
    asha.mark_promoted(1, 3)
    assert asha.next_promotion() is None
    for candidate in range(3, 6):
        asha.report(candidate, [scores[candidate]])
    assert asha.next_promotion() == Promotion(4, 3)  # top 2 of 6: 1 (done) and 4


def test_higher_rungs_are_served_first_and_nan_never_enters() -> None:
    asha = SuccessiveHalving(1, 4, 2)
    asha.report(0, [0.1, 0.8])
    asha.report(1, [0.2, 0.3])
    asha.report(2, [float("nan")])
    asha.mark_promoted(0, 2)
    asha.mark_promoted(1, 2)
    assert asha.next_promotion() == Promotion(0, 4)
    assert 2 not in asha.rungs[0].scores
    assert asha.rung_of(0) == -1 and asha.rung_of(2) == 1 and asha.rung_of(4) == 2


def test_asha_needs_room_between_its_rungs() -> None:
    with pytest.raises(ConfigError, match=r"min_epochs = 4 must be below max_epochs = 4"):
        config_from_dict({"search": {"scheduler": "asha", "min_epochs": 4, "max_epochs": 4}})


def _asha(config: Config, **experiment: int) -> Config:
    return config.replace(
        "search", scheduler="asha", min_epochs=1, max_epochs=4, reduction_factor=2
    ).replace("experiment", **experiment)


def test_asha_run_keeps_whole_curves_rungs_and_lineage(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = _asha(tiny_config, max_candidates=10, max_in_flight=2)
    ds = Experiment(config, tmp_path, progress=False).run(client)
    assert ds.sizes["epoch"] == 4
    trained = ds["epochs_trained"].values
    assert set(trained) <= {1, 2, 4} and (trained == 1).any() and (trained > 1).any()
    assert list(ds["rung"].values) == [{1: 0, 2: 1, 4: 2}[t] for t in trained]
    curves = ds["val_metric"].values
    for row, t in zip(curves, trained, strict=True):
        assert np.isfinite(row[:t]).all() and np.isnan(row[t:]).all()
    assert (ds["objective"].values == curves[np.arange(len(trained)), trained - 1]).all()
    # One row per candidate; a promoted candidate still names the donor it started from.
    assert len(set(ds["candidate"].values)) == ds.sizes["candidate"] == 10
    with LineageRegistry(tmp_path, readonly=True) as registry:
        for record in registry.candidates():
            assert record.target_epochs == len(registry.curve(record.id))
            assert record.attempts == 1
            store = CheckpointStore(tmp_path)
            assert store.verify(record.id, record.checkpoint_digest)


def test_asha_stays_within_the_epoch_budget(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = _asha(tiny_config, max_candidates=50, max_training_epochs=14)
    ds = Experiment(config, tmp_path, progress=False).run(client)
    assert 12 <= int(ds["epochs_trained"].sum()) <= 14
    assert ds.sizes["candidate"] < 14


def test_asha_resume_continues_a_promotion_in_flight(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = _asha(tiny_config, max_candidates=4)
    Experiment(config, tmp_path, progress=False).run(client)
    with LineageRegistry(tmp_path) as registry:
        # As if the client had stopped right after promoting the first one-epoch candidate.
        stopped = next(r for r in registry.candidates() if r.target_epochs == 1)
        registry.set_target_epochs(stopped.id, 2)
    config = config.replace("experiment", max_candidates=6)
    ds = Experiment(config, tmp_path, progress=False, resume=True).run(client)
    assert ds.sizes["candidate"] == 6
    assert int(ds["epochs_trained"].sel(candidate=stopped.id)) >= 2
    assert (ds["status"] == "ok").all()


def test_a_run_with_a_promotion_in_flight_is_not_finished(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    """Resumed with the same budget, the candidate being continued is continued."""
    config = _asha(tiny_config, max_candidates=4)
    Experiment(config, tmp_path, progress=False).run(client)
    with LineageRegistry(tmp_path) as registry:
        stopped = next(r for r in registry.candidates() if r.target_epochs == 1)
        registry.set_target_epochs(stopped.id, 2)
    experiment = Experiment(config, tmp_path, progress=False, resume=True)
    ds = experiment.run(client)
    assert not experiment.already_finished
    assert int(ds["epochs_trained"].sel(candidate=stopped.id)) >= 2
    again = Experiment(config, tmp_path, progress=False, resume=True)
    assert again.run(client).sizes["candidate"] == 4
    assert again.already_finished
