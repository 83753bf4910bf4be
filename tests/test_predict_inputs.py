"""Inputs handed to a trained model are checked against the inputs the run recorded.

A wrong number of features, a missing feature axis, an extra axis or a missing input is one
line naming the input, the shape the model takes and the shape given; a netCDF file is read by
the sample dimension's name, whichever axis it is stored on.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client
from helpers import netcdf_search

from ckptnas import DataError, export_model, load_exported, load_model
from ckptnas.cli import main

N_FEATURES = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    """A finished two-candidate regression on a netCDF table ``x(sample, feature)`` of 10."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, N_FEATURES))
    return netcdf_search(root, client, x, x[:, :3].sum(1))


BAD_SHAPES = [(N_FEATURES,), (30, 1), (30, 9), (30, N_FEATURES, 2)]


@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_load_model_refuses_an_input_of_the_wrong_shape(run: Path, shape: tuple[int, ...]) -> None:
    model = load_model(run, 1)
    expected = rf"input 'x'.*\(sample, 10\).*{re.escape(str(shape))}"
    with pytest.raises(DataError, match=expected):
        model.predict({"x": np.zeros(shape)})


def test_load_model_refuses_a_missing_input(run: Path) -> None:
    with pytest.raises(DataError, match=r"input 'x'"):
        load_model(run, 1).predict({"drug1": np.zeros((3, N_FEATURES))})


@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_exported_model_refuses_an_input_of_the_wrong_shape(
    run: Path, shape: tuple[int, ...], tmp_path: Path
) -> None:
    exported = export_model(run, 1, "safetensors", tmp_path)
    model = load_exported(exported.model_file)
    with pytest.raises(DataError, match=r"input 'x'.*\(sample, 10\)"):
        model({"x": np.zeros(shape)})


def test_right_inputs_still_predict(run: Path) -> None:
    x = np.random.default_rng(4).normal(size=(30, N_FEATURES))
    assert load_model(run, 1).predict({"x": x}).shape == (30,)


def write_inputs(path: Path, dims: tuple[str, ...], values: np.ndarray) -> str:
    xr.Dataset({"x": (dims, values)}).to_netcdf(path)
    return str(path)


def test_predict_reads_the_sample_dimension_by_name(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(5).normal(size=(30, N_FEATURES))
    stored_first = write_inputs(tmp_path / "a.nc", ("sample", "feature"), x)
    stored_last = write_inputs(tmp_path / "b.nc", ("feature", "sample"), x.T)
    for data, out in ((stored_first, "a.out.nc"), (stored_last, "b.out.nc")):
        argv = ["predict", str(run), data, "--candidate", "1", "--out", str(tmp_path / out)]
        assert main(argv) == 0, capsys.readouterr().err
    first = xr.load_dataset(tmp_path / "a.out.nc").prediction
    last = xr.load_dataset(tmp_path / "b.out.nc").prediction
    assert last.dims == ("sample",) and last.size == 30
    np.testing.assert_allclose(last.values, first.values)
    np.testing.assert_allclose(first.values, load_model(run, 1).predict({"x": x}), rtol=1e-6)


@pytest.mark.parametrize(
    ("dims", "shape"),
    [
        (("sample", "feature"), (30, 9)),
        (("sample",), (30,)),
        (("sample", "feature", "extra"), (30, N_FEATURES, 2)),
        (("feature", "sample"), (9, 30)),
    ],
)
def test_predict_refuses_inputs_that_do_not_fit_in_one_line(
    run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dims: tuple[str, ...],
    shape: tuple[int, ...],
) -> None:
    data = write_inputs(tmp_path / "bad.nc", dims, np.zeros(shape))
    out = tmp_path / "p.nc"
    capsys.readouterr()
    assert main(["predict", str(run), data, "--candidate", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ckptnas: error: "), err
    assert "'x'" in err[0] and "10" in err[0] and "bad.nc" in err[0]
    assert not out.exists()
