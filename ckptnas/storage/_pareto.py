"""The Pareto front of a set of candidates judged by several objectives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def non_dominated(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Which rows no other row dominates.

    A row dominates another when it is at least as good in every objective and better in one.
    Rows with a NaN are never on the front and dominate nothing.

    Parameters
    ----------
    values : ndarray of shape (n, m)
        One row per candidate, one column per objective.
    maximize : sequence of bool
        For each objective, whether higher is better.

    Returns
    -------
    ndarray of bool, shape (n,)

    Examples
    --------
    >>> non_dominated(np.array([[0.9, 10], [0.8, 5], [0.7, 8]]), [True, False]).tolist()
    [True, True, False]
    """
    sign = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    better = np.asarray(values, dtype=float).reshape(len(values), len(sign)) * sign
    finite = np.isfinite(better).all(axis=1)
    points = better[finite]
    # at_least[i, j]: row j is at least as good as row i in every objective.
    at_least = (points[None, :, :] >= points[:, None, :]).all(axis=2)
    strictly = (points[None, :, :] > points[:, None, :]).any(axis=2)
    dominated = (at_least & strictly).any(axis=1)
    front = np.zeros(len(better), dtype=bool)
    front[np.flatnonzero(finite)[~dominated]] = True
    return front
