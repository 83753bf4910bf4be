from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ckptnas.config import DataConfig
from ckptnas.data import SYNTHETIC_SIZES, load_data, synthetic_combo
from ckptnas.errors import DataError


def test_synthetic_combo_is_seeded() -> None:
    x1, y1 = synthetic_combo(300, seed=1, noise=0.0)
    x2, y2 = synthetic_combo(300, seed=1, noise=0.0)
    assert all(np.array_equal(x1[k], x2[k]) for k in x1) and np.array_equal(y1, y2)
    assert {k: v.shape[1] for k, v in x1.items()} == SYNTHETIC_SIZES
    assert not np.array_equal(synthetic_combo(300, seed=2)[1], y1)


def test_split_is_disjoint_and_complete() -> None:
    data = load_data(DataConfig(n_samples=500, val_fraction=0.2, test_fraction=0.1), seed=0)
    assert (len(data.val_index), len(data.test_index)) == (100, 50)
    rows = [set(data.train_index), set(data.val_index), set(data.test_index)]
    assert sum(map(len, rows)) == len(set.union(*rows)) == 500
    train_x, _ = data.split("train")
    assert abs(float(train_x["cell"].mean())) < 0.05  # standardised on the training rows


def test_without_test_rows_the_split_is_the_one_runs_had_before() -> None:
    held_out = load_data(DataConfig(n_samples=500, test_fraction=0.2), seed=0)
    without = load_data(DataConfig(n_samples=500, test_fraction=0.0), seed=0)
    assert len(without.test_index) == 0
    assert np.array_equal(held_out.val_index, without.val_index)  # validation rows kept
    assert set(held_out.train_index) == set(without.train_index) - set(held_out.test_index)


def test_the_preprocessing_is_fitted_without_the_test_rows() -> None:
    config = DataConfig(n_samples=400, test_fraction=0.25)
    data = load_data(config, seed=0)
    raw, _ = synthetic_combo(400, seed=0, noise=config.noise)
    fitted = data.preprocessing.inputs["cell"]
    assert np.allclose(fitted.shift, raw["cell"][data.train_index].mean(axis=0))
    assert not np.allclose(fitted.shift, raw["cell"][data.test_index].mean(axis=0))


@pytest.mark.parametrize(
    ("name", "task", "classes"),
    [
        ("diabetes", "regression", 0),
        ("breast_cancer", "classification", 2),
        ("digits", "classification", 10),
    ],
)
def test_sklearn_sets(name: str, task: str, classes: int) -> None:
    data = load_data(DataConfig(kind="sklearn", name=name))
    assert data.task == task and data.n_classes == classes
    assert list(data.inputs) == ["x"]


def _write(tmp_path: Path, **variables: tuple[tuple[str, ...], np.ndarray]) -> Path:
    path = tmp_path / "d.nc"
    xr.Dataset(variables).to_netcdf(path, engine="netcdf4")
    return path


def test_netcdf_inputs_and_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _write(
        tmp_path,
        genes=(("sample", "gene"), rng.normal(size=(50, 6))),
        dose=(("sample",), rng.normal(size=50)),
        label=(("sample",), rng.integers(0, 3, size=50)),
    )
    data = load_data(
        DataConfig(kind="netcdf", path=str(path), inputs=["genes", "dose"], target="label")
    )
    assert data.input_sizes == {"genes": 6, "dose": 1}
    assert data.task == "classification" and data.n_classes == 3


def test_netcdf_missing_variable_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, x=(("sample",), np.zeros(10)), y=(("sample",), np.zeros(10)))
    with pytest.raises(DataError, match="no variable 'z'"):
        load_data(DataConfig(kind="netcdf", path=str(path), inputs=["z"], target="y"))


def test_netcdf_inputs_without_the_targets_sample_dimension(tmp_path: Path) -> None:
    path = _write(tmp_path, x=(("a",), np.zeros(10)), y=(("b",), np.zeros(12)))
    with pytest.raises(DataError, match="input 'x' has dimensions \\('a',\\) but not the sample"):
        load_data(DataConfig(kind="netcdf", path=str(path), inputs=["x"], target="y"))


def test_netcdf_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataConfig(kind="netcdf", path=str(tmp_path / "no.nc"), inputs=["x"], target="y"))


def test_netcdf_empty(tmp_path: Path) -> None:
    path = _write(tmp_path, x=(("s",), np.zeros(0)), y=(("s",), np.zeros(0)))
    with pytest.raises(DataError, match="each split needs at least 2"):
        load_data(DataConfig(kind="netcdf", path=str(path), inputs=["x"], target="y"))


def test_digits_as_images() -> None:
    flat = load_data(DataConfig(kind="sklearn", name="digits"))
    images = load_data(DataConfig(kind="sklearn", name="digits_images"))
    assert images.input_shapes == {"x": (1, 8, 8)}
    assert images.inputs["x"].shape == (1797, 1, 8, 8)
    np.testing.assert_allclose(images.inputs["x"].reshape(1797, 64), flat.inputs["x"], atol=1e-6)


def test_netcdf_inputs_keep_their_trailing_dimensions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 4, 3, 30))  # (channel, height, width, sample)
    signal = rng.normal(size=(30, 7))
    ds = xr.Dataset(
        {
            "image": (("channel", "height", "width", "sample"), image),
            "signal": (("sample", "length"), signal),
            "y": (("sample",), rng.normal(size=30)),
        }
    )
    ds.to_netcdf(tmp_path / "d.nc")
    config = DataConfig(
        kind="netcdf", path=str(tmp_path / "d.nc"), inputs=["image", "signal"], target="y"
    )
    data = load_data(config)
    assert data.input_shapes == {"image": (2, 4, 3), "signal": (7,)}
    # samples first, the other dimensions in their order; standardised per element
    raw = np.moveaxis(image, -1, 0)
    z = (raw - raw[data.train_index].mean(0)) / raw[data.train_index].std(0)
    np.testing.assert_allclose(data.inputs["image"], z, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("x", "y", "needle"),
    [
        (np.arange(20.0), np.linspace(1, 3, 20) * 1e300, "the target 'y' holds values too large"),
        (np.linspace(-1, 1, 20) * 1e300, np.arange(20.0), "input 'x' holds values too large"),
        (np.r_[np.inf, np.arange(19.0)], np.arange(20.0), "input 'x' holds NaN or infinite"),
        (np.arange(20.0), np.r_[np.nan, np.arange(19.0)], "the target 'y' holds NaN or infinite"),
    ],
    ids=["huge-target", "huge-input", "infinite-input", "nan-target"],
)
def test_values_that_cannot_be_standardised_are_refused_naming_the_variable(
    tmp_path: Path, x: np.ndarray, y: np.ndarray, needle: str
) -> None:
    path = _write(tmp_path, x=(("sample",), x), y=(("sample",), y))
    config = DataConfig(kind="netcdf", path=str(path), inputs=["x"], target="y", task="regression")
    with pytest.raises(DataError, match=needle):
        load_data(config)
