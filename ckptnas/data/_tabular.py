"""A dataset as the search uses it: :class:`TabularData`, and :func:`load_data` that makes it.

Every dataset becomes a :class:`TabularData`: one or more named inputs of shape
``(sample, ...)`` (``(sample, feature)`` for tables, ``(sample, channel, length)`` or
``(sample, channel, height, width)`` for signals and images), one target, and a fixed split
into training, validation and held-out test rows (``_split.py``). Nothing is downloaded: the
synthetic set is generated, scikit-learn's sets (digits also as 1x8x8 images) ship with the
package, and netCDF files are the user's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ckptnas.config import DataConfig, Task
from ckptnas.data._netcdf import require_file
from ckptnas.data._registry import DATA_SOURCES
from ckptnas.data._split import Rows, labelled_rows, seeded_rows
from ckptnas.errors import DataError
from ckptnas.storage import Preprocessing, Scaling


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
    n_train, n_val, n_test : int
        Rows of the three splits (``n_test`` 0: nothing held out).
    """

    name: str
    task: Task
    input_shapes: dict[str, tuple[int, ...]]
    preprocessing: Preprocessing
    n_train: int
    n_val: int
    n_test: int = 0

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
    """A dataset of named inputs and one target, split into train, validation and test rows.

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
        Row indices of the training and validation splits.
    preprocessing : Preprocessing
        How the raw inputs were scaled and the target encoded (fitted on the training rows).
    test_index : ndarray
        Row indices of the held-out test split (empty: nothing held out).
    """

    name: str
    task: Task
    inputs: dict[str, np.ndarray]
    target: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    preprocessing: Preprocessing
    test_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

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
            len(self.test_index),
        )

    def split(
        self, which: Literal["train", "val", "test"]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The inputs and target of the training, validation or test rows."""
        index = {"train": self.train_index, "val": self.val_index, "test": self.test_index}[which]
        return {k: v[index] for k, v in self.inputs.items()}, self.target[index]


def load_data(config: DataConfig, seed: int = 0) -> TabularData:
    """Build the dataset a configuration names, loaded by its entry of ``DATA_SOURCES``.

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
    source = DATA_SOURCES.get(config.kind)
    name, inputs, target = source.load(config, seed)
    task = _resolve_task(config.task, target)
    labels = getattr(source, "split_labels", lambda table: None)(config)
    if labels is not None:
        if len(labels) != len(target):
            raise DataError(
                f"{name}: split variable {config.split_variable!r} has {len(labels)} rows but "
                f"the target has {len(target)}"
            )
        rows = labelled_rows(name, labels, config.split_variable)
    else:
        rows = seeded_rows(name, len(target), config.val_fraction, config.test_fraction, seed)
    return _finish(name, task, (inputs, target), config, rows)


def require_data_file(config: DataConfig) -> None:
    """Refuse a ``[data]`` table whose files do not exist here, without reading anything.

    The files are those the data source names (a netCDF dataset's ``path``; the other built-in
    kinds have none). What only building the data can tell (variables, values, rows) is for
    :func:`load_data` to find.

    Raises
    ------
    DataError
        If a file the table names is not a file.
    """
    for path in DATA_SOURCES.get(config.kind).files(config):
        require_file(path)


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
    config: DataConfig,
    rows: Rows,
) -> TabularData:
    """Check a loader's ``(inputs, target)``, standardise, encode classes.

    The scalings are fitted on the training rows alone; the test rows take no part in
    anything but the class list (a label seen only there is still a class of the task).
    """
    inputs, target = arrays
    target_label = f"the target {config.target!r}" if config.target else "the target"
    n = len(target)
    for var, x in inputs.items():
        if len(x) != n:
            raise DataError(f"{name}: input {var!r} has {len(x)} samples but the target has {n}")
        if math.prod(x.shape[1:]) == 0:
            raise DataError(f"{name}: input {var!r} has no features")
    _refuse_non_finite(name, inputs, target, target_label)
    train_index, val_index = rows.train, rows.val
    scalings = {k: _fitted(name, f"input {k!r}", v, train_index) for k, v in inputs.items()}
    scaled = {k: scalings[k].apply(v) for k, v in inputs.items()}
    if task == Task.CLASSIFICATION:
        classes, labels = np.unique(target, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{name}: a classification target needs at least two classes")
        encoding = Preprocessing(task, scalings, classes=tuple(classes.tolist()))
        return TabularData(
            name, task, scaled, labels.astype(np.int64), train_index, val_index, encoding, rows.test
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
    target_scaling = _fitted(name, target_label, y, train_index)
    encoding = Preprocessing(task, scalings, target=target_scaling)
    return TabularData(
        name, task, scaled, target_scaling.apply(y), train_index, val_index, encoding, rows.test
    )


def _refuse_non_finite(
    name: str, inputs: dict[str, np.ndarray], target: np.ndarray, target_label: str
) -> None:
    for var, x in inputs.items():
        if not np.all(np.isfinite(x)):
            raise DataError(f"{name}: input {var!r} holds NaN or infinite values")
    if np.issubdtype(target.dtype, np.number) and not np.all(np.isfinite(target)):
        bad = int(np.sum(~np.isfinite(target)))
        raise DataError(f"{name}: {target_label} holds NaN or infinite values ({bad} rows)")


def _fitted(name: str, what: str, values: np.ndarray, train_index: np.ndarray) -> Scaling:
    """The standardisation of ``values`` fitted on the training rows, if it is a finite one.

    Values near 1e300 are finite, but their mean or variance overflows: every scaled value
    would be 0 or NaN, and each candidate would fail as if it had diverged.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        scaling = Scaling.fit(values[train_index])
        scaled = scaling.apply(values)
    if not (np.all(np.isfinite(scaling.scale)) and np.all(np.isfinite(scaled))):
        largest = float(np.max(np.abs(values)))
        raise DataError(
            f"{name}: {what} holds values too large to standardise (up to {largest:g}; their "
            "variance overflows): divide it by a constant first"
        )
    return scaling


def _numeric_target(name: str, target: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(target, dtype=np.float64)
    except ValueError:
        raise DataError(
            f"{name}: the target holds labels such as {target[0]!r}; a regression needs numbers "
            "([data] task = 'classification' or 'auto' treats them as classes)"
        ) from None
