"""Which rows train, which validate, which are held out for testing.

Validation rows score candidates, stop training early and rank the search; test rows are held
out from all of it, so the quality a finished model shows on them is not biased by the choices
made on the validation rows. Rows are split by a seeded permutation (``[data] val_fraction``,
``test_fraction``), or by the data's own labels (a netCDF file's ``[data] split_variable``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckptnas.errors import DataError

#: Rows each split needs at least (R2 over fewer validation rows is undefined or meaningless).
MIN_SPLIT_ROWS = 2
#: The values of a split variable, one per row.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Rows:
    """The sorted row indices of each split; ``test`` is empty when nothing is held out."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def seeded_rows(name: str, n: int, val_fraction: float, test_fraction: float, seed: int) -> Rows:
    """Split ``n`` rows by a permutation seeded with ``seed``.

    The validation rows are the first of the permutation, the test rows the next: with no
    test rows, the split is the one a run without a test split had.

    Raises
    ------
    DataError
        If a split would get fewer than :data:`MIN_SPLIT_ROWS` rows (the test split may be
        empty only when ``test_fraction`` is 0).
    """
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    counts = {"training": n - n_val - n_test, "validation": n_val}
    if test_fraction > 0:
        counts["test"] = n_test
    if min(counts.values()) < MIN_SPLIT_ROWS:
        given = ", ".join(f"{count} {split}" for split, count in counts.items())
        raise DataError(
            f"{name}: {n} samples give {given} rows with val_fraction = {val_fraction} and "
            f"test_fraction = {test_fraction}; each split needs at least {MIN_SPLIT_ROWS}"
        )
    order = np.random.default_rng(seed).permutation(n)
    return Rows(
        train=np.sort(order[n_val + n_test :]),
        val=np.sort(order[:n_val]),
        test=np.sort(order[n_val : n_val + n_test]),
    )


def labelled_rows(name: str, labels: np.ndarray, variable: str) -> Rows:
    """Split rows by their labels, each ``train``, ``val`` or ``test`` (text or bytes).

    Raises
    ------
    DataError
        If a label is something else, or training or validation gets fewer than
        :data:`MIN_SPLIT_ROWS` rows.
    """
    text = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in labels.ravel()])
    unknown = sorted(set(text.tolist()) - set(SPLITS))
    if unknown:
        raise DataError(
            f"{name}: split variable {variable!r} holds {', '.join(map(repr, unknown[:3]))}; "
            f"each row must be one of {', '.join(SPLITS)}"
        )
    rows = Rows(*(np.flatnonzero(text == split) for split in SPLITS))
    for split, index in (("train", rows.train), ("val", rows.val)):
        if len(index) < MIN_SPLIT_ROWS:
            raise DataError(
                f"{name}: split variable {variable!r} marks {len(index)} rows {split!r}; "
                f"each of train and val needs at least {MIN_SPLIT_ROWS}"
            )
    return rows
