"""MLflow and TensorBoard follow a search: read back from a real store and real event files."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client

from ckptnas import load_model
from ckptnas.config import Config, config_from_dict, load_config
from ckptnas.data import load_data
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment
from ckptnas.storage import CandidateRecord, CandidateStatus, Curve, LineageRegistry
from ckptnas.tracking import MlflowListener, TensorBoardListener, tracking_listeners
from ckptnas.tracking._tensorboard import SEARCH, candidate_folder
from tests.conftest import TINY

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

CURVES = ("train_loss", "val_loss", "val_metric", "epoch_time")


@dataclass(frozen=True)
class TrackedRun:
    """A finished search that MLflow (an SQLite store) and TensorBoard followed."""

    run_dir: Path
    uri: str
    tensorboard: Path
    config: Config
    x_val: np.ndarray

    @property
    def node_names(self) -> list[str]:
        with LineageRegistry(self.run_dir, readonly=True) as registry:
            return list(json.loads(registry.get_meta("space") or "{}")["node_names"])

    def records(self) -> tuple[list[CandidateRecord], dict[int, list[Curve]]]:
        with LineageRegistry(self.run_dir, readonly=True) as registry:
            return registry.candidates(), registry.curves()


def _config(root: Path, **search: object) -> tuple[Config, np.ndarray]:
    """A netCDF table whose raw features are far from scaled: predictions need the scaling."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3)) * [5_000.0, 20.0, 0.1] + [30_000.0, 1990.0, 1.0]
    y = 300.0 + 80.0 * np.tanh((x[:, 0] - 30_000.0) / 5_000.0) - 2.0 * (x[:, 1] - 1990.0)
    path = root / "houses.nc"
    xr.Dataset({"x": (("sample", "feature"), x), "y": (("sample",), y)}).to_netcdf(path)
    config = (
        config_from_dict(TINY)
        .replace("data", kind="netcdf", path=str(path), inputs=["x"], target="y")
        .replace("space", shared_inputs=[])
        .replace("experiment", name="tracked", max_candidates=8)
        .replace("search", **search)
    )
    return config, x


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, client: Client) -> TrackedRun:
    """An ASHA search (candidates continued from 1 to 3 epochs), followed by both trackers."""
    root = tmp_path_factory.mktemp("tracked")
    config, x = _config(root, scheduler="asha", min_epochs=1, max_epochs=3, reduction_factor=3)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = config.replace("tracking", mlflow_uri=uri, tensorboard_dir=str(root / "tb"))
    # MLflow keeps an SQLite store's artifacts under ./mlruns unless told: make them here.
    MlflowClient(uri).create_experiment("tracked", artifact_location=(root / "art").as_uri())
    run_dir = root / "run"
    Experiment(config, run_dir, progress=False, listeners=tracking_listeners(config)).run(client)
    val = load_data(config.data, seed=config.experiment.seed).val_index
    return TrackedRun(run_dir, uri, root / "tb", config, x[val])


def _mlflow_runs(uri: str, experiment: str = "tracked") -> tuple[object, list[object]]:
    """The one parent run of the experiment, and its nested runs."""
    mlflow_client = MlflowClient(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    assert found is not None
    runs = mlflow_client.search_runs([found.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.data.tags.get("mlflow.runName") for r in parents]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(nested) == len(runs) - 1
    return parents[0], nested


def test_mlflow_has_a_nested_run_per_candidate_with_its_curves(tracked: TrackedRun) -> None:
    records, curves = tracked.records()
    parent, nested = _mlflow_runs(tracked.uri)
    by_candidate = {int(r.data.tags["ckptnas.candidate"]): r for r in nested}
    finished = [r for r in records if r.status != CandidateStatus.PENDING]
    assert sorted(by_candidate) == [r.id for r in finished] and len(finished) == 8
    assert any(len(curves[r.id]) == 3 for r in finished), "ASHA continued none"
    mlflow_client = MlflowClient(tracked.uri)
    for record in finished:
        run = by_candidate[record.id]
        arch = [run.data.params[f"arch.{name}"] for name in tracked.node_names]
        assert arch == [str(a) for a in record.arch]
        tags = run.data.tags
        assert tags["ckptnas.parent"] == ("none" if record.parent is None else str(record.parent))
        assert float(tags["ckptnas.frac_params_transferred"]) == pytest.approx(
            record.frac_params_transferred, rel=1e-5
        )
        assert run.info.status == "FINISHED"
        for k, name in enumerate(CURVES):
            history = mlflow_client.get_metric_history(run.info.run_id, name)
            assert [m.step for m in history] == list(range(1, len(curves[record.id]) + 1))
            np.testing.assert_allclose(
                [m.value for m in history], [c[k] for c in curves[record.id]]
            )
        assert run.data.metrics["objective"] == pytest.approx(record.objective)
    assert any(r.parent is not None for r in finished), "nothing was warm-started"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["search.scheduler"] == "asha"
    best = max(r.objective for r in finished if r.status == CandidateStatus.OK)
    assert parent.data.metrics["best_objective"] == pytest.approx(best)


def test_the_logged_best_model_predicts_on_raw_inputs(tracked: TrackedRun) -> None:
    parent, _ = _mlflow_runs(tracked.uri)
    best = int(parent.data.tags["ckptnas.best_model_candidate"])
    records, _ = tracked.records()
    assert (
        best
        == max((r for r in records if r.status == CandidateStatus.OK), key=lambda r: r.objective).id
    )
    mlflow.set_tracking_uri(tracked.uri)  # what runs:/ URIs are resolved against
    try:
        logged = mlflow.pytorch.load_model(f"runs:/{parent.info.run_id}/best_model")
    finally:
        mlflow.set_tracking_uri(None)
    expected = load_model(tracked.run_dir, best)({"x": tracked.x_val})
    with torch.no_grad():
        got = logged({"x": tracked.x_val})
    torch.testing.assert_close(got, expected)
    assert 100 < float(got.median()) < 500  # in the target's units: the scaling came along


def test_tensorboard_has_each_candidates_scalars_and_the_best_so_far(tracked: TrackedRun) -> None:
    records, curves = tracked.records()
    folder = tracked.tensorboard / "run"
    for record in records:
        events = EventAccumulator(str(folder / candidate_folder(record.id)))
        events.Reload()
        for k, name in enumerate(CURVES):
            scalars = events.Scalars(name)
            assert [s.step for s in scalars] == list(range(1, len(curves[record.id]) + 1))
            np.testing.assert_allclose(
                [s.value for s in scalars], [c[k] for c in curves[record.id]], rtol=1e-6
            )
    search = EventAccumulator(str(folder / SEARCH))
    search.Reload()
    best = [s.value for s in search.Scalars("best_so_far")]
    assert best == sorted(best)  # it never goes down
    ok = [r.objective for r in records if r.status == CandidateStatus.OK]
    assert best[-1] == pytest.approx(max(ok), rel=1e-6)
    assert search.Scalars("best_so_far")[-1].step == len(records)


def test_what_is_more_than_one_request_takes_goes_in_several(tracked: TrackedRun) -> None:
    from ckptnas.tracking._mlflow import _log

    mlflow_client = MlflowClient(tracked.uri)
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("batches")).info.run_id
    metrics = [("m", float(k), k) for k in range(2500)]
    params = [(f"p{k}", str(k)) for k in range(150)]
    _log(mlflow_client, run_id, metrics=metrics, params=params, tags=[("t", "x")] * 2)
    data = mlflow_client.get_run(run_id).data
    assert len(data.params) == 150 and data.tags["t"] == "x"
    assert len(mlflow_client.get_metric_history(run_id, "m")) == 2500


def test_a_resumed_search_goes_on_in_the_same_runs(tmp_path: Path, client: Client) -> None:
    config, _ = _config(tmp_path)
    config = config.replace("experiment", max_candidates=3).replace(
        "tracking",
        mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        tensorboard_dir=str(tmp_path / "tb"),
    )
    MlflowClient(config.tracking.mlflow_uri).create_experiment(
        "tracked", artifact_location=(tmp_path / "art").as_uri()
    )
    run_dir = tmp_path / "run"
    Experiment(config, run_dir, progress=False, listeners=tracking_listeners(config)).run(client)
    more = config.replace("experiment", max_candidates=5)
    Experiment(more, run_dir, progress=False, resume=True, listeners=tracking_listeners(more)).run(
        client
    )
    _, nested = _mlflow_runs(config.tracking.mlflow_uri)
    assert sorted(int(r.data.tags["ckptnas.candidate"]) for r in nested) == [1, 2, 3, 4, 5]
    for cid in range(1, 6):  # each epoch written once, by one process or the other
        events = EventAccumulator(str(tmp_path / "tb" / "run" / candidate_folder(cid)))
        events.Reload()
        assert [s.step for s in events.Scalars("val_metric")] == [1, 2]


def test_a_tracking_server_that_is_down_costs_one_warning(
    tmp_path: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # MLflow's own retries are left as they are: the listener finds the server down at once.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")
    config, _ = _config(tmp_path)
    config = config.replace("experiment", max_candidates=4)
    listener = MlflowListener("http://127.0.0.1:9", experiment="down")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ckptnas"):
        ds = Experiment(config, tmp_path / "run", progress=False, listeners=[listener]).run(client)
    assert time.monotonic() - started < 60
    assert ds.sizes["candidate"] == 4
    warned = [r for r in caplog.records if r.name.startswith("ckptnas.tracking")]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert "MLflow logging (http://127.0.0.1:9) failed" in warned[0].getMessage()
    assert listener.failed


def test_tracking_keys_are_read_and_relative_paths_taken_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "exp.toml").write_text(
        '[tracking]\nmlflow_uri = "sqlite:///stores/mlflow.db"\nmlflow_experiment = "nas"\n'
        'tensorboard_dir = "tb"\n'
    )
    table = load_config(tmp_path / "exp.toml").tracking
    assert table.mlflow_uri == f"sqlite:///{tmp_path.resolve() / 'stores' / 'mlflow.db'}"
    assert table.mlflow_experiment == "nas"
    assert table.tensorboard_dir == str(tmp_path.resolve() / "tb")
    for uri, resolved in (
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("file:mlruns", (tmp_path / "mlruns").resolve().as_uri()),
        ("mlruns", str((tmp_path / "mlruns").resolve())),
        ("/abs/mlruns", "/abs/mlruns"),
        ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
    ):
        (tmp_path / "exp.toml").write_text(f'[tracking]\nmlflow_uri = "{uri}"\n')
        assert load_config(tmp_path / "exp.toml").tracking.mlflow_uri == resolved
    assert tracking_listeners(Config()) == []


def test_mlflow_not_installed_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name)
    )
    config = Config().replace("tracking", mlflow_uri="sqlite:///m.db")
    with pytest.raises(
        ConfigError, match=r'mlflow_uri needs mlflow.*pip install -e "\.\[tracking\]"'
    ):
        tracking_listeners(config)
    TensorBoardListener("tb")  # what is installed is not refused


def test_ckptnas_run_logs_where_the_tracking_table_says(
    tmp_path: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ckptnas.cli import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "exp.toml").write_text(
        '[experiment]\nname = "cli"\nmax_candidates = 3\n[data]\nn_samples = 300\n'
        "[space]\nnum_nodes = 2\nunits = [8]\n[training]\nepochs = 2\n"
        '[tracking]\nmlflow_uri = "sqlite:///mlflow.db"\ntensorboard_dir = "tb"\n'
    )
    monkeypatch.chdir(tmp_path)  # not the configuration's folder: its paths still are
    address = client.scheduler.address
    run = ["run", "project/exp.toml", "--out", "run", "--scheduler", address, "--no-progress"]
    assert main(run) == 0
    _, nested = _mlflow_runs(f"sqlite:///{project / 'mlflow.db'}", experiment="cli")
    assert len(nested) == 3
    assert sorted(p.name for p in (project / "tb" / "run").iterdir()) == [
        *(candidate_folder(cid) for cid in (1, 2, 3)),
        SEARCH,
    ]

    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name)
    )
    capsys.readouterr()
    assert main([*run[:3], "again", *run[4:]]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not Path("again").exists()  # refused before anything ran
