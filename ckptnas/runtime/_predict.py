"""Predictions of a trained candidate for a user's netCDF file: ``ckptnas predict``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from ckptnas._version import package_version
from ckptnas.config import Task
from ckptnas.data import netcdf_inputs, open_netcdf
from ckptnas.errors import DataError
from ckptnas.runtime._models import TrainedModel, load_model, shape_text
from ckptnas.storage import RunDir, recorded_config, refuse_overwrite, replacing


def predict_file(
    run_dir: str | Path,
    candidate_id: int,
    data: str | Path,
    out: str | Path,
    trust_code: bool = False,
) -> xr.Dataset:
    """Write a candidate's predictions for the raw inputs of a netCDF file, as netCDF.

    The file holds the run's input variables, with the sample dimension the run's data had
    (``[data] sample_dim``; by default the dimension that leaves each input the shape per
    sample the model was trained on, the first such one of the first input). The sample
    dimension may be stored on any axis: it is found by its name.

    Parameters
    ----------
    run_dir : str or Path
    candidate_id : int
    data : str or Path
        A netCDF file with the run's input variables.
    out : str or Path
        Where the predictions go: ``prediction(sample)`` in the target's units for a
        regression; ``label(sample)`` and ``probability(sample, class)`` for a classification.

    Returns
    -------
    xarray.Dataset
        What was written.
    """
    out = refuse_overwrite(out, reading=[data])
    model = load_model(run_dir, candidate_id, trust_code)
    config = recorded_config(RunDir(run_dir))
    ds = open_netcdf(data, model.input_names)
    sample = _checked_sample_dim(ds, model, config.data.sample_dim, f"{str(data)!r}")
    inputs = netcdf_inputs(ds, model.input_names, sample, f"{str(data)!r}")
    attrs = _prediction_attrs(run_dir, candidate_id)
    coords = {sample: ds[sample]} if sample in ds.coords else {}
    result = _predictions(model, inputs, sample, coords, attrs)
    with replacing(out) as tmp:
        result.to_netcdf(tmp, engine="netcdf4")
    return result


def _checked_sample_dim(ds: xr.Dataset, model: TrainedModel, configured: str, where: str) -> str:
    """The sample dimension of the file's inputs, refusing inputs the model cannot take.

    Without ``[data] sample_dim``, the run's data named its samples by the target's dimension,
    which a file of inputs alone lacks: the dimension that leaves every input the shape per
    sample the model was trained on is the one, whichever axis it is stored on.
    """
    dims = [str(d) for d in ds[model.input_names[0]].dims]
    fitting = [d for d in dims if all(_fits(ds[n], d, model) for n in model.input_names)]
    sample = configured or (fitting or dims)[0]
    for name in model.input_names:
        if not _fits(ds[name], sample, model):
            given = ", ".join(f"{d}: {n}" for d, n in ds[name].sizes.items())
            raise DataError(
                f"{where}: input {name!r} has dimensions ({given}); the model takes it as "
                f"{shape_text(model.input_shapes[name], sample)}"
            )
    return sample


def _fits(x: xr.DataArray, sample: str, model: TrainedModel) -> bool:
    """Whether ``x`` with ``sample`` as its samples has the shape per sample the model takes."""
    expected = model.input_shapes[str(x.name)]
    rest = tuple(n for d, n in x.sizes.items() if d != sample)
    return sample in x.dims and (rest == expected or (rest == () and expected == (1,)))


def _prediction_attrs(run_dir: str | Path, candidate_id: int) -> dict[str, str]:
    """The attributes of a predictions file: which run and candidate made it, and when."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "title": f"ckptnas predictions of candidate {candidate_id}",
        "source": f"run {Path(run_dir).resolve()}, candidate {candidate_id}",
        "Conventions": "CF-1.11",
        "history": f"{stamp}: ckptnas {package_version()} predict, candidate {candidate_id}",
    }


def _predictions(
    model: TrainedModel,
    inputs: dict[str, np.ndarray],
    sample: str,
    coords: dict[str, xr.DataArray],
    attrs: dict[str, str],
) -> xr.Dataset:
    """The model's predictions for ``inputs``, one per ``sample``, as a dataset.

    A classifier gives each sample's label and the probability of each class; a regression, its
    prediction in the target's units.
    """
    if model.task == Task.CLASSIFICATION:
        probability = model(inputs).detach().cpu().numpy()
        labels = np.asarray(model.classes)[probability.argmax(1)]
        return xr.Dataset(
            {
                "label": ((sample,), labels, {"long_name": "predicted class label"}),
                "probability": (
                    (sample, "class"),
                    probability,
                    {"long_name": "predicted probability of each class", "units": "1"},
                ),
            },
            coords | {"class": ("class", np.asarray(model.classes), {"long_name": "class"})},
            attrs,
        )
    prediction = model.predict(inputs)
    return xr.Dataset(
        {"prediction": ((sample,), prediction, {"long_name": "predicted target"})},
        coords,
        attrs,
    )
