"""``[data]``: which dataset, and how it is split.

``kind`` names an entry of the data sources' registry (:mod:`ckptnas.data`), which checks the
keys it reads (``name``, ``path``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ckptnas.config._fields import choice, non_negative, option, registered


class Task(StrEnum):
    """``[data] task``: what the head predicts (``auto`` decides from the target)."""

    AUTO = "auto"
    REGRESSION = "regression"
    CLASSIFICATION = "classification"


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which dataset, and how it is split into training, validation and test rows.

    Test rows are held out: nothing of the search sees them (see :mod:`ckptnas.data`).
    """

    kind: str = registered("data", "synthetic_combo")
    name: str = option(
        "", why="for kind = sklearn: diabetes, breast_cancer, digits or digits_images"
    )
    path: str = option("", why="for kind = netcdf: the file to read")
    inputs: list[str] = option([], why="for kind = netcdf: the input variables")
    target: str = option("", why="for kind = netcdf: the target variable")
    sample_dim: str = option(
        "",
        why="for kind = netcdf: the dimension that indexes samples in inputs and target; "
        "empty means the target's only dimension",
    )
    task: str = choice(Task.AUTO)
    val_fraction: float = option(0.2, lambda x: 0 < x < 1, "strictly between 0 and 1")
    test_fraction: float = option(0.2, lambda x: 0 <= x < 1, "at least 0, below 1")
    split_variable: str = option(
        "",
        why="for kind = netcdf: a variable along the sample dimension whose values (train, "
        "val, test) assign each row; replaces val_fraction and test_fraction",
    )
    n_samples: int = option(6000, lambda x: x >= 10, ">= 10 (synthetic data only)")
    noise: float = option(0.1, non_negative, ">= 0 (synthetic data only)")
