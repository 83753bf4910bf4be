"""A candidate's objective values, in the order of ``[search] objectives``.

Each value is computed by the objective's entry of :data:`~ckptnas.search.OBJECTIVES`, the same
computation that marks the Pareto front in ``results.nc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ckptnas.search import OBJECTIVES


def objective_values(
    objectives: Sequence[str],
    val_metric: float,
    val_loss: float,
    n_params: int,
    latency: float = math.nan,
) -> list[float]:
    """The values a strategy is told, one per objective; all NaN when the metric is NaN.

    Parameters
    ----------
    objectives : sequence of str
        Names of :data:`ckptnas.search.OBJECTIVES`.
    val_metric, val_loss : float
        The validation metric and loss the candidate reached (NaN when it failed).
    n_params : int
        The candidate's parameter count.
    latency : float
        Seconds of its forward pass over 256 validation rows.

    Examples
    --------
    >>> objective_values(["val_metric", "n_params"], 0.8, 0.3, 1200)
    [0.8, 1200.0]
    """
    if not math.isfinite(val_metric):
        return [math.nan] * len(objectives)
    measured = {
        "val_metric": val_metric,
        "val_loss": val_loss,
        "n_params": float(n_params),
        "latency": latency,
    }
    return [float(OBJECTIVES.get(name).value(measured)) for name in objectives]
