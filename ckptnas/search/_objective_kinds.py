"""The built-in objectives: the entries of :data:`~ckptnas.search.OBJECTIVES`.

An objective has a ``direction`` (``"maximize"`` or ``"minimize"``: what is better when
``[search] directions`` does not say) and ``value(measured)``: its value from what a finished
candidate measured, a mapping with ``val_metric``, ``val_loss`` (the last epoch's), ``n_params``
and ``latency`` (seconds of a forward pass over 256 validation rows). The strategy is told these
values, and ``results.nc`` marks the Pareto front of the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: What a finished candidate measured, by name: what an objective's value is computed from.
MEASURES = ("val_metric", "val_loss", "n_params", "latency")


@dataclass(frozen=True)
class Measured:
    """An objective that is one of the candidate's measures as it is.

    Attributes
    ----------
    measure : str
        One of :data:`MEASURES`.
    direction : {"maximize", "minimize"}
    """

    measure: str
    direction: str

    def value(self, measured: Mapping[str, float]) -> float:
        """The measure."""
        return float(measured[self.measure])
