"""A trained candidate as users take it away: raw inputs in, the data's units or labels out.

Two small runs (a housing-like regression, a classification with string labels) serve every
test: ``load_model`` and each export format must give back the objective the run recorded.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client

from ckptnas import (
    CandidateError,
    CkptnasError,
    Experiment,
    LineageRegistry,
    export_model,
    load_exported,
    load_model,
)
from ckptnas.cli import main
from ckptnas.config import Config, config_from_dict
from ckptnas.data import load_data
from ckptnas.runtime import ExportedModel
from tests.conftest import TINY

NAMES = np.array(["setosa", "versicolor", "virginica"])


@dataclass(frozen=True)
class FinishedRun:
    """A run's best candidate and the raw validation rows its objective was measured on."""

    run_dir: Path
    best: int
    objective: float
    x_val: np.ndarray
    y_val: np.ndarray
    config: Config


def finished_run(
    root: Path, client: Client, x: np.ndarray, y: np.ndarray, name: str
) -> FinishedRun:
    """Three candidates searched on a netCDF table of raw ``x`` and ``y``."""
    path = root / f"{name}.nc"
    xr.Dataset({"x": (("sample", "feature"), x), "y": (("sample",), y)}).to_netcdf(path)
    config = (
        config_from_dict(TINY)
        .replace("data", kind="netcdf", path=str(path), inputs=["x"], target="y", task="auto")
        .replace("space", shared_inputs=[])
        .replace("experiment", max_candidates=3)
    )
    run_dir = root / name
    ds = Experiment(config, run_dir, progress=False).run(client)
    best = int(ds.objective.idxmax())
    val = load_data(config.data, seed=config.experiment.seed).val_index
    return FinishedRun(
        run_dir, best, float(ds.objective.sel(candidate=best)), x[val], y[val], config
    )


@pytest.fixture(scope="module")
def houses(tmp_path_factory: pytest.TempPathFactory, client: Client) -> FinishedRun:
    """Features in the tens of thousands, a target in the hundreds: a housing-like table."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3)) * [5_000.0, 20.0, 0.1] + [30_000.0, 1990.0, 1.0]
    y = 300.0 + 80.0 * np.tanh((x[:, 0] - 30_000.0) / 5_000.0) - 2.0 * (x[:, 1] - 1990.0)
    return finished_run(tmp_path_factory.mktemp("houses"), client, x, y, "houses")


@pytest.fixture(scope="module")
def flowers(tmp_path_factory: pytest.TempPathFactory, client: Client) -> FinishedRun:
    """Three classes named by strings."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = NAMES[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    return finished_run(tmp_path_factory.mktemp("flowers"), client, x, y, "flowers")


def r2(prediction: np.ndarray, y: np.ndarray) -> float:
    return float(1 - ((prediction - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def test_regression_model_takes_raw_inputs_and_answers_in_target_units(
    houses: FinishedRun,
) -> None:
    model = load_model(houses.run_dir, houses.best)
    prediction = model.predict({"x": houses.x_val})
    assert 150 < float(np.median(prediction)) < 450  # in the target's units
    assert r2(prediction, houses.y_val) == pytest.approx(houses.objective, abs=1e-4)
    config = houses.config
    scaled_x, _ = load_data(config.data, seed=config.experiment.seed).split("val")
    bare = model.network({"x": torch.as_tensor(scaled_x["x"])})  # the bare network stays
    assert bare.shape == (len(houses.x_val), 1)


def test_classifier_with_string_labels_predicts_labels(flowers: FinishedRun) -> None:
    model = load_model(flowers.run_dir, flowers.best)
    assert list(model.classes) == list(NAMES)
    labels = model.predict({"x": flowers.x_val})
    assert set(labels) <= set(NAMES)
    assert float(np.mean(labels == flowers.y_val)) == pytest.approx(flowers.objective, abs=1e-6)
    probabilities = model({"x": flowers.x_val})
    assert probabilities.shape == (len(flowers.x_val), 3)
    assert np.allclose(probabilities.sum(1).detach().numpy(), 1.0, atol=1e-5)


def test_a_candidate_without_weights_is_refused_in_one_line(houses: FinishedRun) -> None:
    with pytest.raises(CandidateError, match="has no candidate 99"):
        load_model(houses.run_dir, 99)


# -- exported models ------------------------------------------------------------------------
def run_exported(exported: ExportedModel, x: np.ndarray) -> np.ndarray:
    """What an exported model answers for raw ``x``, loaded as a user of its format would."""
    fmt = exported.description["format"]
    if fmt == "safetensors":
        out = load_exported(exported.model_file)({"x": x})
        return np.asarray(out.detach().numpy())
    if fmt == "torch-export":
        module = torch.export.load(exported.model_file).module()
        return np.asarray(module(torch.as_tensor(x, dtype=torch.float32)).detach().numpy())
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime checks the ONNX export")
    session = ort.InferenceSession(str(exported.model_file))
    (out,) = session.run(None, {"x": x.astype(np.float32)})
    return np.asarray(out)


@pytest.mark.parametrize("fmt", ["torch-export", "onnx", "safetensors"])
def test_exported_regression_reproduces_the_objective_from_raw_inputs(
    houses: FinishedRun, fmt: str, tmp_path: Path
) -> None:
    exported = export_model(houses.run_dir, houses.best, fmt, tmp_path)
    prediction = run_exported(exported, houses.x_val)
    assert prediction.shape == (len(houses.x_val),)
    assert r2(prediction, houses.y_val) == pytest.approx(houses.objective, abs=1e-4)
    expected = load_model(houses.run_dir, houses.best).predict({"x": houses.x_val})
    np.testing.assert_allclose(prediction, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("fmt", ["torch-export", "onnx", "safetensors"])
def test_exported_classifier_reproduces_the_objective_with_its_labels(
    flowers: FinishedRun, fmt: str, tmp_path: Path
) -> None:
    exported = export_model(flowers.run_dir, flowers.best, fmt, tmp_path)
    probabilities = run_exported(exported, flowers.x_val)
    (output,) = exported.description["outputs"]
    labels = np.asarray(output["classes"])[probabilities.argmax(1)]
    assert float(np.mean(labels == flowers.y_val)) == pytest.approx(flowers.objective, abs=1e-6)
    expected = load_model(flowers.run_dir, flowers.best)({"x": flowers.x_val})
    np.testing.assert_allclose(probabilities, expected.detach().numpy(), atol=1e-5)


def test_export_description_says_what_goes_in_and_out(flowers: FinishedRun, tmp_path: Path) -> None:
    exported = export_model(flowers.run_dir, flowers.best, "safetensors", tmp_path)
    on_disk = json.loads(exported.description_file.read_text())
    assert on_disk == exported.description
    assert on_disk["model_file"] == exported.model_file.name
    assert on_disk["inputs"] == [
        {
            "name": "x",
            "shape": ["batch", 4],
            "dtype": "float32",
            "description": on_disk["inputs"][0]["description"],
        }
    ]
    assert on_disk["outputs"][0]["name"] == "probability"
    assert on_disk["preprocessing"]["classes"] == list(NAMES)
    assert len(on_disk["preprocessing"]["inputs"]["x"]["shift"]) == 4
    with LineageRegistry(flowers.run_dir, readonly=True) as registry:
        record = registry.get(flowers.best)
    assert on_disk["architecture"]["choices"] == list(record.arch)
    assert on_disk["objective"]["validation"] == pytest.approx(flowers.objective)


def test_export_cli_writes_both_files_and_refuses_an_unknown_candidate(
    houses: FinishedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", str(houses.run_dir), "--candidate", str(houses.best), "--out", str(tmp_path)]
    assert main([*argv, "--format", "safetensors"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"candidate-{houses.best}.json",
        f"candidate-{houses.best}.safetensors",
    ]
    assert main(["export", str(houses.run_dir), "--candidate", "99"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ckptnas: error: run {houses.run_dir} has no candidate 99"
    )


def test_onnx_export_without_its_exporter_says_what_to_install(
    houses: FinishedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails as if not installed
    with pytest.raises(CkptnasError, match=r"needs the onnxscript package: pip install"):
        export_model(houses.run_dir, houses.best, "onnx", tmp_path)
    with pytest.raises(CkptnasError, match="unknown export format 'keras'"):
        export_model(houses.run_dir, houses.best, "keras", tmp_path)
