"""scikit-learn's bundled datasets, ``[data] kind = "sklearn"`` (scikit-learn loads with them)."""

from __future__ import annotations

import numpy as np

from ckptnas.errors import DataError


def load_sklearn(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The inputs (one, ``x``) and target of a dataset bundled with scikit-learn.

    Raises
    ------
    DataError
        If scikit-learn has no dataset of that name here.
    """
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
