"""Full training of the top-K candidates: real search, real Dask client, real SQLite and netCDF."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client

from ckptnas.cli import main
from ckptnas.config import Config, config_from_dict
from ckptnas.errors import DataError
from ckptnas.runtime import DeviceData, Experiment, choose_device, data_key, evaluate
from ckptnas.space import SearchSpace
from ckptnas.storage import LineageRegistry, RunDir, TopKRegistry, time_to_target
from ckptnas.topk import FullTrainSpec, TopKSettings, full_train, topk_store, train_topk

SEARCH = {
    "experiment": {"name": "topk", "seed": 5, "max_candidates": 6, "max_in_flight": 2},
    "data": {"kind": "synthetic_combo", "n_samples": 300},
    "space": {"num_nodes": 2, "units": [8, 16], "shared_inputs": [["drug1", "drug2"]]},
    "search": {"population_size": 2, "sample_size": 1, "mutation_bias": 1.0},
    "training": {"epochs": 1, "batch_size": 32},
}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """An in-process Dask cluster: real scheduler and workers, threads instead of processes."""
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def search_config() -> Config:
    return config_from_dict(SEARCH)


@pytest.fixture(scope="module")
def search_run(
    tmp_path_factory: pytest.TempPathFactory, client: Client, search_config: Config
) -> Path:
    run_dir = tmp_path_factory.mktemp("search") / "run"
    Experiment(search_config, run_dir, progress=False).run(client)
    return run_dir


def _spec(run_dir: Path, config: Config, init: str, **changes: object) -> FullTrainSpec:
    with LineageRegistry(run_dir, readonly=True) as lineage:
        best = max(lineage.candidates("ok"), key=lambda r: r.objective)
        space = lineage.recorded_space()
    spec = FullTrainSpec(
        run_id=1,
        candidate_id=best.id,
        init=init,
        arch=best.arch,
        space=space,
        run_dir=str(run_dir),
        data_key=data_key(config.data, config.experiment.seed),
        source_digest=best.checkpoint_digest,
        seed=11,
        max_epochs=12,
        patience=2,
        min_delta=0.0,
        batch_size=32,
        learning_rate=1e-3,
        device="cpu",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metric", "target", "expected"),
    [
        ([0.1, 0.5, 0.7], 0.5, (2.0, 2)),
        ([0.6, 0.5, 0.7], 0.5, (1.0, 1)),
        ([0.1, 0.2, np.nan], 0.5, (math.inf, 0)),
    ],
)
def test_time_to_target_first_epoch_reaching_it(
    metric: list[float], target: float, expected: tuple[float, int]
) -> None:
    assert time_to_target(np.array(metric), np.array([1.0, 2.0, 3.0]), target) == expected


def test_time_to_target_nan_target() -> None:
    seconds, epochs = time_to_target(np.array([0.1]), np.array([1.0]), math.nan)
    assert math.isnan(seconds) and epochs == 0


def test_topk_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="patience"):
        TopKSettings(patience=0)


def test_full_train_keeps_best_epoch_weights(search_run: Path, search_config: Config) -> None:
    result = full_train(_spec(search_run, search_config, "scratch"))
    assert result.status == "ok"
    losses = np.array(result.val_loss)
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) <= result.best_epoch + 2  # stopped within `patience` epochs of the best
    assert result.final_metric == result.val_metric[result.best_epoch - 1]
    # The saved weights are the best epoch's: evaluating them gives the recorded final metric.
    tensors = topk_store(search_run, "scratch").load(result.candidate_id, digest=None)
    # where the docs say: topk/<init>/, beside no folder of its own
    assert (search_run / "topk" / "scratch" / f"{result.candidate_id:06d}.safetensors").is_file()
    assert not (search_run / "topk" / "scratch" / "checkpoints").exists()
    with LineageRegistry(search_run, readonly=True) as lineage:
        space = SearchSpace.from_dict(lineage.recorded_space())
    model = space.build(_spec(search_run, search_config, "scratch").arch)
    model.load_state_dict(tensors)
    data = DeviceData.of(data_key(search_config.data, 5), choose_device("cpu"))
    assert evaluate(model, data)[1] == pytest.approx(result.final_metric, abs=1e-6)


def test_full_train_checkpoint_init_checks_digest(search_run: Path, search_config: Config) -> None:
    result = full_train(_spec(search_run, search_config, "checkpoint", source_digest="0" * 64))
    assert result.status == "failed"
    assert "digest" in result.error
    assert result.val_loss == ()


def test_full_train_checkpoint_init_starts_from_search_weights(
    search_run: Path, search_config: Config
) -> None:
    spec = _spec(search_run, search_config, "checkpoint", max_epochs=1, learning_rate=1e-12)
    result = full_train(spec)
    with LineageRegistry(search_run, readonly=True) as lineage:
        objective = lineage.get(spec.candidate_id).objective
    # With a vanishing learning rate one more epoch leaves the search's weights as they were.
    assert result.val_metric[0] == pytest.approx(objective, abs=1e-4)


def test_topk_weights_written_under_checkpoints_by_0_1_stay_there(tmp_path: Path) -> None:
    legacy = tmp_path / "topk" / "scratch" / "checkpoints"
    legacy.mkdir(parents=True)
    assert topk_store(tmp_path, "scratch").root == legacy
    assert topk_store(tmp_path, "checkpoint").root == tmp_path / "topk" / "checkpoint"


def test_train_topk_writes_dataset_and_lineage(tmp_path: Path, client: Client) -> None:
    run_dir = tmp_path / "run"
    config = config_from_dict(SEARCH)
    Experiment(config, run_dir, progress=False).run(client)
    ds = train_topk(run_dir, TopKSettings(k=2, max_epochs=4, patience=2), client=client)
    on_disk = xr.load_dataset(RunDir(run_dir).topk_results)
    assert dict(on_disk.sizes) == {"rank": 2, "init": 2, "epoch": on_disk.sizes["epoch"]}
    assert list(on_disk.init.values) == ["scratch", "checkpoint"]
    with LineageRegistry(run_dir, readonly=True) as lineage:
        ok = sorted(lineage.candidates("ok"), key=lambda r: (-r.objective, r.id))
        assert list(ds.candidate.values) == [r.id for r in ok[:2]]
        with TopKRegistry(run_dir, readonly=True) as registry:
            runs = registry.runs()
            assert len(runs) == 4 and {r.status for r in runs} == {"ok"}
            for run in runs:
                record = lineage.get(run.candidate)
                assert run.ancestors == tuple(lineage.ancestors(run.candidate))
                expected = record.checkpoint_digest if run.init == "checkpoint" else None
                assert run.source_digest == expected
                assert topk_store(run_dir, run.init).exists(run.candidate)
    # time to target and speed-up are computed from the stored curves
    for rank in range(2):
        row = on_disk.isel(rank=rank)
        target = float(row.final_metric.sel(init="scratch"))
        times = [
            time_to_target(
                row.val_metric.sel(init=i).values, row.elapsed.sel(init=i).values, target
            )[0]
            for i in ("scratch", "checkpoint")
        ]
        assert float(row.time_to_target.sel(init="scratch")) == pytest.approx(times[0])
        assert float(row.speedup) == pytest.approx(times[0] / times[1])


def test_train_topk_never_repeats_finished_runs(tmp_path: Path, client: Client) -> None:
    run_dir = tmp_path / "run"
    Experiment(config_from_dict(SEARCH), run_dir, progress=False).run(client)
    settings = TopKSettings(k=1, max_epochs=2, patience=1)
    train_topk(run_dir, settings, inits=("scratch",), client=client)
    with TopKRegistry(run_dir, readonly=True) as registry:
        first = registry.runs()
    ds = train_topk(run_dir, replace(settings, k=2), client=client)
    with TopKRegistry(run_dir, readonly=True) as registry:
        again = {(r.candidate, r.init): r for r in registry.runs()}
    assert len(again) == 4
    assert again[(first[0].candidate, "scratch")] == first[0]
    assert set(ds.status.values.ravel()) == {"ok"}


def test_train_topk_stops_at_data_its_workers_cannot_build(
    tmp_path: Path, client: Client, search_run: Path, search_config: Config
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(search_run, run_dir)
    missing = str(tmp_path / "moved.nc")
    config = search_config.replace("data", kind="netcdf", path=missing, inputs=["x"], target="y")
    with pytest.raises(DataError, match=r"moved\.nc' does not exist"):
        train_topk(run_dir, TopKSettings(k=1, max_epochs=1), client=client, config=config)
    assert not RunDir(run_dir).topk_results.exists()


def test_cli_train_topk_rejects_a_directory_without_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train-topk", str(tmp_path), "-k", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.toml" in err[0]


def test_full_training_takes_the_hyperparameters_the_search_found(
    tmp_path: Path, client: Client
) -> None:
    from ckptnas.storage import CandidateStatus, Init
    from ckptnas.topk._run import _specs

    run_dir = tmp_path / "run"
    config = config_from_dict(SEARCH).replace(
        "search",
        hyperparameters={"learning_rate": [0.005], "batch_size": [16], "dropout": [0.1]},
    )
    Experiment(config, run_dir, progress=False).run(client)
    with LineageRegistry(run_dir) as lineage, TopKRegistry(run_dir) as registry:
        specs = _specs(config, registry, lineage, TopKSettings(k=1), [Init.SCRATCH])
    (spec,) = specs
    assert (spec.learning_rate, spec.batch_size, spec.dropout) == (0.005, 16, 0.1)
    assert spec.weight_decay == 0.0
    assert full_train(replace(spec, max_epochs=2)).status == CandidateStatus.OK
