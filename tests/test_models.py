"""A trained candidate as users take it away: raw inputs in, the data's units or labels out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client

from ckptnas import Experiment, load_model
from ckptnas.config import Config
from ckptnas.data import load_data


def best_of(config: Config, run_dir: Path, client: Client) -> tuple[int, float]:
    ds = Experiment(config, run_dir, progress=False).run(client)
    best = int(ds.objective.idxmax())
    return best, float(ds.objective.sel(candidate=best))


def netcdf_config(
    config: Config, path: Path, **variables: tuple[tuple[str, ...], object]
) -> Config:
    xr.Dataset(variables).to_netcdf(path)
    return config.replace(
        "data", kind="netcdf", path=str(path), inputs=["x"], target="y", task="auto"
    ).replace("space", shared_inputs=[])


def test_regression_model_takes_raw_inputs_and_answers_in_target_units(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    """Features in the tens of thousands, a target in the hundreds: a housing-like table."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3)) * [5_000.0, 20.0, 0.1] + [30_000.0, 1990.0, 1.0]
    y = 300.0 + 80.0 * np.tanh((x[:, 0] - 30_000.0) / 5_000.0) - 2.0 * (x[:, 1] - 1990.0)
    config = netcdf_config(
        tiny_config, tmp_path / "houses.nc", x=(("sample", "feature"), x), y=(("sample",), y)
    )
    best, objective = best_of(
        config.replace("experiment", max_candidates=3), tmp_path / "r", client
    )
    model = load_model(tmp_path / "r", best)
    val = load_data(config.data, seed=config.experiment.seed).val_index
    prediction = model.predict({"x": x[val]})
    assert 150 < float(np.median(prediction)) < 450  # in the target's units
    r2 = 1 - ((prediction - y[val]) ** 2).sum() / ((y[val] - y[val].mean()) ** 2).sum()
    assert r2 == pytest.approx(objective, abs=1e-4)
    scaled_x, _ = load_data(config.data, seed=config.experiment.seed).split("val")
    bare = model.network({"x": torch.as_tensor(scaled_x["x"])})  # the bare network stays
    assert bare.shape == (len(val), 1)


def test_classifier_with_string_labels_predicts_labels(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    config = netcdf_config(
        tiny_config, tmp_path / "flowers.nc", x=(("sample", "feature"), x), y=(("sample",), y)
    )
    best, objective = best_of(
        config.replace("experiment", max_candidates=3), tmp_path / "r", client
    )
    model = load_model(tmp_path / "r", best)
    assert list(model.classes) == list(names)
    val = load_data(config.data, seed=config.experiment.seed).val_index
    labels = model.predict({"x": x[val]})
    assert set(labels) <= set(names)
    assert float(np.mean(labels == y[val])) == pytest.approx(objective, abs=1e-6)
    probabilities = model({"x": x[val]})
    assert probabilities.shape == (len(val), 3)
    assert np.allclose(probabilities.sum(1).detach().numpy(), 1.0, atol=1e-5)
