"""Datasets: a synthetic Combo-like default, scikit-learn's bundled sets, and netCDF files.

Every dataset becomes a :class:`TabularData`: one or more named inputs of shape
``(sample, ...)`` (``(sample, feature)`` for tables, ``(sample, channel, length)`` or
``(sample, channel, height, width)`` for signals and images), one target, and a fixed, seeded
split into training and validation rows. Nothing is downloaded: the synthetic set is generated,
scikit-learn's sets (digits also as 1x8x8 images) ship with the package, and netCDF files are the
user's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from ckptnas.config import DataConfig, DataKind, Task
from ckptnas.errors import DataError
from ckptnas.storage import Preprocessing, Scaling

#: Rows each split needs at least (R2 over fewer validation rows is undefined or meaningless).
MIN_SPLIT_ROWS = 2

#: Feature counts of the synthetic Combo-like inputs: one cell line and two drugs.
SYNTHETIC_SIZES = {"cell": 48, "drug1": 32, "drug2": 32}


@dataclass(frozen=True)
class DataDescription:
    """What the client of a run needs of its dataset: its shapes, task and preprocessing.

    The workers build the dataset; the client, which builds the search space from the shapes and
    saves the preprocessing in the run directory, needs only this (:meth:`TabularData.describe`),
    a few kilobytes.

    Attributes
    ----------
    name : str
    task : {"regression", "classification"}
    input_shapes : dict of str to tuple of int
        Input name to the shape of one sample, in input order.
    preprocessing : Preprocessing
    n_train, n_val : int
        Rows of the two splits.
    """

    name: str
    task: Task
    input_shapes: dict[str, tuple[int, ...]]
    preprocessing: Preprocessing
    n_train: int
    n_val: int

    @property
    def input_sizes(self) -> dict[str, int]:
        """Input name to its number of features (the first dimension of one sample)."""
        return {name: shape[0] for name, shape in self.input_shapes.items()}

    @property
    def output_size(self) -> int:
        """Width of the model's last layer: 1 for regression, the class count otherwise."""
        return len(self.preprocessing.classes) if self.task == Task.CLASSIFICATION else 1


@dataclass(frozen=True)
class TabularData:
    """A dataset of named inputs and one target, already split into train and validation rows.

    Attributes
    ----------
    name : str
        A short name, recorded in the results.
    task : {"regression", "classification"}
    inputs : dict of str to ndarray
        Input name to a float32 array of shape ``(sample, ...)``, standardised per element.
    target : ndarray
        Float32 of shape ``(sample,)`` for regression, int64 class indices for classification.
    train_index, val_index : ndarray
        Row indices of the two splits.
    preprocessing : Preprocessing
        How the raw inputs were scaled and the target encoded (fitted on the training rows).
    """

    name: str
    task: Task
    inputs: dict[str, np.ndarray]
    target: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    preprocessing: Preprocessing

    @property
    def n_classes(self) -> int:
        """Number of classes, 0 for regression."""
        return len(self.preprocessing.classes)

    @property
    def input_sizes(self) -> dict[str, int]:
        """Input name to its number of features (the size of its second dimension)."""
        return {name: int(x.shape[1]) for name, x in self.inputs.items()}

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Input name to the shape of one sample, in input order."""
        return {name: tuple(int(d) for d in x.shape[1:]) for name, x in self.inputs.items()}

    @property
    def output_size(self) -> int:
        """Width of the model's last layer: 1 for regression, the class count otherwise."""
        return self.n_classes if self.task == Task.CLASSIFICATION else 1

    def describe(self) -> DataDescription:
        """Its shapes, task and preprocessing, without the arrays."""
        return DataDescription(
            self.name,
            self.task,
            self.input_shapes,
            self.preprocessing,
            len(self.train_index),
            len(self.val_index),
        )

    def split(self, which: Literal["train", "val"]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The inputs and target of the training or the validation rows."""
        index = self.train_index if which == "train" else self.val_index
        return {k: v[index] for k, v in self.inputs.items()}, self.target[index]


def load_data(config: DataConfig, seed: int = 0) -> TabularData:
    """Build the dataset a configuration names.

    Parameters
    ----------
    config : DataConfig
        The ``[data]`` table.
    seed : int
        Seeds the synthetic data and the train/validation split.

    Returns
    -------
    TabularData

    Raises
    ------
    DataError
        If a file or variable is missing, sample counts differ, or the data are empty.
    """
    if config.kind == DataKind.SYNTHETIC_COMBO:
        inputs, target = synthetic_combo(config.n_samples, seed=seed, noise=config.noise)
        name, task = str(DataKind.SYNTHETIC_COMBO), _resolve_task(config.task, target)
    elif config.kind == DataKind.SKLEARN:
        inputs, target = _sklearn(config.name)
        name, task = config.name, _resolve_task(config.task, target)
    else:
        inputs, target = _netcdf(config)
        name, task = Path(config.path).stem, _resolve_task(config.task, target)
    return _finish(name, task, (inputs, target), config.val_fraction, seed)


def synthetic_combo(
    n_samples: int, seed: int = 0, noise: float = 0.1
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Generate Combo-like drug-pair response data.

    Each row is a cell line and two drugs; the response depends on a nonlinear embedding of the
    cell line interacting with the same nonlinear embedding of each drug (so a sub-network shared
    by the two drugs fits it), plus a drug-drug synergy term. The target is symmetric in the two
    drugs, as a combination screen's is.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    seed : int
        Seeds the generator: the same seed gives the same data.
    noise : float
        Standard deviation of the Gaussian noise added to the standardised response.

    Returns
    -------
    inputs : dict of str to ndarray
        ``cell``, ``drug1`` and ``drug2`` feature matrices.
    target : ndarray
        The standardised response, float32.
    """
    rng = np.random.default_rng(seed)
    # The generating weights come from a fixed stream so that every seed samples the same task.
    task = np.random.default_rng(20211007)
    k = 4
    n_cell, n_drug = SYNTHETIC_SIZES["cell"], SYNTHETIC_SIZES["drug1"]
    cell_map = task.normal(size=(n_cell, k)) / np.sqrt(n_cell)
    drug_map = task.normal(size=(n_drug, k)) / np.sqrt(n_drug)
    cell_linear = task.normal(size=n_cell) / np.sqrt(n_cell)
    drug_linear = task.normal(size=n_drug) / np.sqrt(n_drug)
    inputs = {name: rng.normal(size=(n_samples, size)) for name, size in SYNTHETIC_SIZES.items()}
    u = np.tanh(1.5 * inputs["cell"] @ cell_map)
    v1 = np.tanh(1.5 * inputs["drug1"] @ drug_map)
    v2 = np.tanh(1.5 * inputs["drug2"] @ drug_map)
    y = (
        inputs["cell"] @ cell_linear
        + (inputs["drug1"] + inputs["drug2"]) @ drug_linear
        + (u * (v1 + v2)).sum(1)
        + 0.5 * (v1 * v2).sum(1)
    )
    y = (y - y.mean()) / y.std()
    y = y + noise * rng.normal(size=n_samples)
    return {k: v.astype(np.float32) for k, v in inputs.items()}, y.astype(np.float32)


def _sklearn(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from sklearn import datasets

    loaders = {
        "diabetes": datasets.load_diabetes,
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
        "digits_images": datasets.load_digits,
    }
    if name not in loaders:
        raise DataError(f"unknown scikit-learn dataset {name!r}; known: {', '.join(loaders)}")
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype=np.float64)
    if name == "digits_images":
        x = x.reshape(-1, 1, 8, 8)  # (sample, channel, height, width)
    return {"x": x}, np.asarray(bunch.target)


def _netcdf(config: DataConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
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


def require_data_file(config: DataConfig) -> None:
    """Refuse a ``[data]`` table whose file does not exist here, without reading anything.

    Only a netCDF dataset has a file; the other kinds pass. What only building the data can
    tell (variables, values, rows) is for :func:`load_data` to find.

    Raises
    ------
    DataError
        If ``kind = "netcdf"`` and ``path`` is not a file.
    """
    if config.kind == DataKind.NETCDF:
        _require_file(config.path)


def _require_file(path: str | Path) -> None:
    if not Path(path).is_file():
        raise DataError(f"data file {str(path)!r} does not exist")


def open_netcdf(path: str | Path, variables: list[str]) -> xr.Dataset:
    """A netCDF file's contents, refusing a missing file or variable with one clear line."""
    _require_file(path)
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


def _resolve_task(task: str, target: np.ndarray) -> Task:
    """The configured task, or for ``auto`` classification of integer or boolean targets."""
    if task != Task.AUTO:
        return Task(task)
    # Integers, booleans and text are labels; floats are measurements.
    labels = target.dtype.kind in "iubOSU"
    return Task.CLASSIFICATION if labels else Task.REGRESSION


def _finish(
    name: str,
    task: Task,
    arrays: tuple[dict[str, np.ndarray], np.ndarray],
    val_fraction: float,
    seed: int,
) -> TabularData:
    """Check a loader's ``(inputs, target)``, split the rows, standardise, encode classes."""
    inputs, target = arrays
    n = len(target)
    for var, x in inputs.items():
        if len(x) != n:
            raise DataError(f"{name}: input {var!r} has {len(x)} samples but the target has {n}")
        if math.prod(x.shape[1:]) == 0:
            raise DataError(f"{name}: input {var!r} has no features")
    n_val = round(n * val_fraction)
    if min(n_val, n - n_val) < MIN_SPLIT_ROWS:
        raise DataError(
            f"{name}: {n} samples give {n - n_val} training and {n_val} validation rows with "
            f"val_fraction = {val_fraction}; each split needs at least {MIN_SPLIT_ROWS}"
        )
    if any(not np.all(np.isfinite(x)) for x in inputs.values()):
        raise DataError(f"{name}: inputs hold NaN or infinite values")
    if np.issubdtype(target.dtype, np.number) and not np.all(np.isfinite(target)):
        bad = int(np.sum(~np.isfinite(target)))
        raise DataError(f"{name}: the target holds NaN or infinite values ({bad} rows)")
    order = np.random.default_rng(seed).permutation(n)
    val_index, train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
    scalings = {k: Scaling.fit(v[train_index]) for k, v in inputs.items()}
    scaled = {k: scalings[k].apply(v) for k, v in inputs.items()}
    if task == Task.CLASSIFICATION:
        classes, labels = np.unique(target, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{name}: a classification target needs at least two classes")
        encoding = Preprocessing(task, scalings, classes=tuple(classes.tolist()))
        return TabularData(
            name, task, scaled, labels.astype(np.int64), train_index, val_index, encoding
        )
    y = _numeric_target(name, target)
    for split, index in (("training", train_index), ("validation", val_index)):
        if np.ptp(y[index]) == 0:
            raise DataError(
                f"{name}: the target is constant over the {split} rows ({y[index][0]:g}); "
                "a regression needs it to vary (R2 is undefined otherwise)"
            )
    # Targets are standardised too: a target in the hundreds, or near 1e30 (whose squares
    # overflow float32), trains as well as one near 1, and R2 does not change with its scale.
    target_scaling = Scaling.fit(y[train_index])
    encoding = Preprocessing(task, scalings, target=target_scaling)
    return TabularData(
        name, task, scaled, target_scaling.apply(y), train_index, val_index, encoding
    )


def _numeric_target(name: str, target: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(target, dtype=np.float64)
    except ValueError:
        raise DataError(
            f"{name}: the target holds labels such as {target[0]!r}; a regression needs numbers "
            "([data] task = 'classification' or 'auto' treats them as classes)"
        ) from None
