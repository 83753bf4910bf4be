"""The client of a run never builds its dataset: a worker builds it and describes it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

import ckptnas.data._tabular
from ckptnas.config import Config
from ckptnas.data import DataDescription, load_data
from ckptnas.errors import DataError
from ckptnas.runtime import Experiment, _submit, data_key, resume_experiment
from ckptnas.runtime._dataset import describe_on_cluster
from ckptnas.storage import Preprocessing


@pytest.fixture
def no_data_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building any dataset in this process fails (the workers are processes of their own)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the client built the dataset")

    # Every loader ends in _finish: a client that built the data, by whatever name it imported
    # load_data, would call it.
    monkeypatch.setattr(ckptnas.data._tabular, "_finish", refuse)


def _builds_counted() -> None:
    """On a worker: count each dataset this process builds."""
    from ckptnas.runtime import _worker

    original = _worker.load_data

    def counted(*args: Any, **kwargs: Any) -> Any:
        _worker.BUILDS = getattr(_worker, "BUILDS", 0) + 1  # type: ignore[attr-defined]
        return original(*args, **kwargs)

    _worker.load_data = counted  # type: ignore[assignment]
    _worker.BUILDS = 0  # type: ignore[attr-defined]


def _builds() -> int:
    from ckptnas.runtime import _worker

    return int(getattr(_worker, "BUILDS", -1))


def _uncount() -> None:
    from ckptnas.data import load_data
    from ckptnas.runtime import _worker

    _worker.load_data = load_data


@pytest.fixture
def counting(client: Client) -> Iterator[Client]:
    """The shared cluster, its workers counting the datasets they build."""
    client.run(_builds_counted)
    try:
        yield client
    finally:
        client.run(_uncount)


def assert_same_description(a: DataDescription, b: DataDescription) -> None:
    assert (a.name, a.task, a.input_shapes) == (b.name, b.task, b.input_shapes)
    assert (a.n_train, a.n_val, a.output_size) == (b.n_train, b.n_val, b.output_size)
    assert_same_preprocessing(a.preprocessing, b.preprocessing)


def assert_same_preprocessing(a: Preprocessing, b: Preprocessing) -> None:
    assert (a.task, a.classes, list(a.inputs)) == (b.task, b.classes, list(b.inputs))
    for name, scaling in a.inputs.items():
        np.testing.assert_array_equal(scaling.shift, b.inputs[name].shift)
        np.testing.assert_array_equal(scaling.scale, b.inputs[name].scale)
    assert (a.target is None) == (b.target is None)
    if a.target is not None and b.target is not None:
        np.testing.assert_array_equal(a.target.shift, b.target.shift)
        np.testing.assert_array_equal(a.target.scale, b.target.scale)


def test_run_and_resume_build_no_dataset_on_the_client(
    tiny_config: Config, tmp_path: Path, client: Client, no_data_here: None
) -> None:
    run = tmp_path / "run"
    config = tiny_config.replace("experiment", max_candidates=3)
    Experiment(config, run, progress=False).run(client)
    # resume_experiment starts its own (embedded) cluster, as `ckptnas resume` does
    ds = resume_experiment(run, progress=False, max_candidates=5)
    assert ds.sizes["candidate"] == 5
    assert set(ds.status.values) == {"ok"}


def test_the_no_data_fixture_catches_a_client_that_builds(
    tiny_config: Config, no_data_here: None
) -> None:
    with pytest.raises(AssertionError, match="the client built the dataset"):
        load_data(tiny_config.data, seed=tiny_config.experiment.seed)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "synthetic_combo", "n_samples": 300},
        {"kind": "sklearn", "name": "digits"},
        {"kind": "sklearn", "name": "digits_images"},
    ],
)
def test_description_is_what_the_workers_build(
    tiny_config: Config, client: Client, data: dict[str, Any]
) -> None:
    config = tiny_config.replace("data", **data)
    key = data_key(config.data, config.experiment.seed)
    described = describe_on_cluster(client, key)
    built = load_data(config.data, seed=config.experiment.seed)
    assert_same_description(described, built.describe())
    assert described.input_sizes == built.input_sizes
    assert described.output_size == built.output_size


def test_each_worker_builds_the_dataset_once(
    tiny_config: Config, tmp_path: Path, counting: Client
) -> None:
    config = tiny_config.replace("experiment", seed=97_531, max_candidates=4)
    key = data_key(config.data, config.experiment.seed)
    describe_on_cluster(counting, key)
    assert set(counting.run(_builds).values()) == {1}  # every worker, even one not describing
    # A run describes it again, registers the plugin again and trains on it: from the cache.
    Experiment(config, tmp_path / "run", progress=False).run(counting)
    assert set(counting.run(_builds).values()) == {1}


def test_a_run_saves_the_workers_preprocessing(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = tiny_config.replace("experiment", max_candidates=2)
    Experiment(config, tmp_path / "run", progress=False).run(client)
    built = load_data(config.data, seed=config.experiment.seed)
    assert_same_preprocessing(Preprocessing.load(tmp_path / "run"), built.preprocessing)


def _constant_target(path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    xr.Dataset({"x": (("sample", "f"), x), "y": (("sample",), np.full(50, 7.0))}).to_netcdf(path)


@pytest.mark.parametrize(
    ("make", "needle"),
    [(_constant_target, "target is constant"), (None, "does not exist")],
)
def test_a_data_error_on_a_worker_is_one_line_and_writes_nothing(
    tiny_config: Config, tmp_path: Path, client: Client, make: Any, needle: str
) -> None:
    path = tmp_path / "d.nc"
    if make is not None:
        make(path)
    config = tiny_config.replace(
        "data", kind="netcdf", path=str(path), inputs=["x"], target="y", task="regression"
    )
    run = tmp_path / "run"
    # A user's cluster: the client does not look for the file, the worker finds it missing.
    with pytest.raises(DataError, match=needle) as caught:
        Experiment(config, run, progress=False).run(client)
    assert "\n" not in str(caught.value)
    assert not run.exists()
    # No worker logged it (as a failed task or plugin) beside the client's one line.
    logs = client.get_worker_logs()
    assert not [m for lines in logs.values() for _, m in lines if needle in m]


def test_description_waits_for_a_worker_that_arrives_late_and_says_so(
    tiny_config: Config, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_submit, "NO_WORKER_WARNING", 0.5)
    key = data_key(tiny_config.data, tiny_config.experiment.seed)
    with (
        LocalCluster(
            n_workers=0, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as late,
        ThreadPoolExecutor(1) as pool,
        caplog.at_level(logging.WARNING, logger="ckptnas"),
    ):
        waiting = pool.submit(describe_on_cluster, late, key)
        time.sleep(2.0)
        assert not waiting.done()
        cluster.scale(1)
        described = waiting.result(timeout=120)
        built = load_data(tiny_config.data, seed=tiny_config.experiment.seed).describe()
        assert_same_description(described, built)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no worker has described the dataset" in warnings[0]
    assert "the cluster has no workers" in warnings[0]


def test_a_missing_file_is_refused_before_the_embedded_cluster_starts(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cluster(config: Config) -> Any:
        raise AssertionError("a cluster was started")

    monkeypatch.setattr("ckptnas.runtime._experiment.connect", no_cluster)
    missing = str(tmp_path / "missing.nc")
    config = tiny_config.replace("data", kind="netcdf", path=missing, inputs=["x"], target="y")
    with pytest.raises(DataError, match="does not exist"):
        Experiment(config, tmp_path / "run", progress=False).run()
    assert not (tmp_path / "run").exists()
