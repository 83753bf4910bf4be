"""Predictions of a trained candidate for a user's netCDF file: ``ckptnas predict``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from ckptnas._version import package_version
from ckptnas.config import Task
from ckptnas.data import netcdf_inputs, open_netcdf
from ckptnas.runtime._models import load_model
from ckptnas.storage import RunDir, replacing


def predict_file(
    run_dir: str | Path,
    candidate_id: int,
    data: str | Path,
    out: str | Path,
    trust_code: bool = False,
) -> xr.Dataset:
    """Write a candidate's predictions for the raw inputs of a netCDF file, as netCDF.

    The file holds the run's input variables, with the sample dimension the run's data had
    (``[data] sample_dim``; by default the first dimension of the first input).

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
    model = load_model(run_dir, candidate_id, trust_code)
    config = RunDir(run_dir).recorded_config()
    ds = open_netcdf(data, model.input_names)
    sample = config.data.sample_dim or str(ds[model.input_names[0]].dims[0])
    inputs = netcdf_inputs(ds, model.input_names, sample, f"{str(data)!r}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs = {
        "title": f"ckptnas predictions of candidate {candidate_id}",
        "source": f"run {Path(run_dir).resolve()}, candidate {candidate_id}",
        "Conventions": "CF-1.11",
        "history": f"{stamp}: ckptnas {package_version()} predict, candidate {candidate_id}",
    }
    coords = {sample: ds[sample]} if sample in ds.coords else {}
    if model.task == Task.CLASSIFICATION:
        probability = model(inputs).detach().cpu().numpy()
        labels = np.asarray(model.classes)[probability.argmax(1)]
        result = xr.Dataset(
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
    else:
        prediction = model.predict(inputs)
        result = xr.Dataset(
            {"prediction": ((sample,), prediction, {"long_name": "predicted target"})},
            coords,
            attrs,
        )
    with replacing(Path(out)) as tmp:
        result.to_netcdf(tmp, engine="netcdf4")
    return result
