"""netCDF files, ``[data] kind = "netcdf"``: variables matched by the sample dimension's name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ckptnas.errors import DataError

if TYPE_CHECKING:
    from ckptnas.config import DataConfig


def load_netcdf(config: DataConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The inputs and target of a netCDF file, samples first, matched by dimension name."""
    ds = open_netcdf(config.path, [*config.inputs, config.target])
    target = ds[config.target]
    sample = config.sample_dim or (str(target.dims[0]) if target.ndim == 1 else "")
    if target.dims != (sample,):
        raise DataError(
            f"{config.path!r}: target {config.target!r} has dimensions {target.dims}; it must "
            f"have one, the sample dimension{f' {sample!r}' if sample else ''} "
            "([data] sample_dim)"
        )
    inputs = netcdf_inputs(ds, config.inputs, sample, f"{config.path!r}")
    return inputs, np.asarray(target.values)


def load_split_labels(config: DataConfig) -> np.ndarray:
    """The split label of each row, from the variable ``[data] split_variable`` of the file.

    Raises
    ------
    DataError
        If the variable is missing or is not one-dimensional along the sample dimension.
    """
    variable = config.split_variable
    ds = open_netcdf(config.path, [config.target, variable])
    sample = config.sample_dim or str(ds[config.target].dims[0])
    labels = ds[variable]
    if labels.dims != (sample,):
        raise DataError(
            f"{config.path!r}: split variable {variable!r} has dimensions {labels.dims}; it "
            f"must have one, the sample dimension {sample!r}"
        )
    return np.asarray(labels.values)


def require_file(path: str | Path) -> None:
    """Refuse a data file that does not exist here."""
    if not Path(path).is_file():
        raise DataError(f"data file {str(path)!r} does not exist")


def open_netcdf(path: str | Path, variables: list[str]) -> xr.Dataset:
    """A netCDF file's contents, refusing a missing file or variable with one clear line."""
    require_file(path)
    try:
        ds = xr.load_dataset(path, engine="netcdf4")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {str(path)!r} as netCDF: {exc}") from None
    for var in variables:
        if var not in ds.variables:
            raise DataError(
                f"{str(path)!r} has no variable {var!r}; it holds: "
                f"{', '.join(map(str, ds.data_vars))}"
            )
    return ds


def netcdf_inputs(
    ds: xr.Dataset, names: list[str], sample: str, where: str
) -> dict[str, np.ndarray]:
    """Inputs as ``(sample, ...)`` arrays, found by the sample dimension's name.

    The sample dimension goes first; the others keep their order (``(sample, length)``,
    ``(sample, channel, height, width)``). An input with only the sample dimension becomes
    ``(sample, 1)``.

    Raises
    ------
    DataError
        If an input lacks the sample dimension.
    """
    arrays = {}
    for var in names:
        x = ds[var]
        if sample not in x.dims:
            raise DataError(
                f"{where}: input {var!r} has dimensions {x.dims} but not the sample dimension "
                f"{sample!r} ([data] sample_dim names it)"
            )
        values = np.asarray(x.transpose(sample, ...).values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        arrays[var] = values
    return arrays
