"""A run's headline numbers and best candidates, from its results dataset or its registry.

Both sources give the same :class:`RunSummary`; the registry is read without xarray (what
``ckptnas summary`` does on a login node: about 0.15 s instead of about 1 s, most of it
importing xarray, pandas and, through xarray's duck-array checks, dask.array).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ckptnas.storage import CandidateRecord, CandidateStatus, Curve, LineageRegistry

if TYPE_CHECKING:
    import xarray as xr


def successful(ds: xr.Dataset) -> xr.Dataset:
    """The candidates whose status is ``ok``, variables keeping their types."""
    return ds.isel(candidate=np.flatnonzero(ds.status.values == CandidateStatus.OK))


@dataclass(frozen=True)
class RunSummary:
    """The finished candidates of a run, the successful ones as columns.

    Attributes
    ----------
    n_candidates : int
        Finished candidates, failed ones included.
    id, objective, parent, frac_params_transferred, n_params, first_metric : ndarray
        One value per successful candidate, in id order; ``parent`` is -1 for scratch and
        ``first_metric`` is the validation metric after the first epoch.
    """

    n_candidates: int
    id: np.ndarray
    objective: np.ndarray
    parent: np.ndarray
    frac_params_transferred: np.ndarray
    n_params: np.ndarray
    first_metric: np.ndarray

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> RunSummary:
        """The summary of a results dataset (``results.nc``)."""
        ok = successful(ds)
        return cls(
            n_candidates=int(ds.sizes["candidate"]),
            id=ok.candidate.values,
            objective=ok.objective.values,
            parent=ok.parent.values,
            frac_params_transferred=ok.frac_params_transferred.values,
            n_params=ok.n_params.values,
            first_metric=ok.val_metric.isel(epoch=0).values,
        )

    @classmethod
    def from_registry(cls, registry: LineageRegistry) -> RunSummary:
        """The summary of a lineage registry, up to its last recorded candidate."""
        return cls.from_records(registry.candidates(), registry.curves())

    @classmethod
    def from_records(
        cls, records: Iterable[CandidateRecord], curves: Mapping[int, Sequence[Curve]]
    ) -> RunSummary:
        """The summary of these candidates' records and curves (a registry's, or some of them)."""
        finished = [r for r in records if r.status != CandidateStatus.PENDING]
        ok = [r for r in finished if r.status == CandidateStatus.OK]
        first = [curves[r.id][0][2] if curves.get(r.id) else math.nan for r in ok]
        return cls(
            n_candidates=len(finished),
            id=np.array([r.id for r in ok], dtype=np.int64),
            objective=np.array([r.objective for r in ok], dtype=float),
            parent=np.array([-1 if r.parent is None else r.parent for r in ok], dtype=np.int64),
            frac_params_transferred=np.array([r.frac_params_transferred for r in ok], dtype=float),
            n_params=np.array([r.n_params for r in ok], dtype=np.int64),
            first_metric=np.array(first, dtype=float),
        )

    def headline(self) -> dict[str, float]:
        """Warm-start share, transfer size, first-epoch metric (see :func:`summarize`)."""
        warm = self.parent >= 0

        def mean(x: np.ndarray) -> float:
            return float(np.mean(x)) if x.size else math.nan

        return {
            "n_candidates": self.n_candidates,
            "n_ok": len(self.id),
            "warm_share": mean(warm.astype(float)),
            "mean_frac_params_transferred": mean(self.frac_params_transferred[warm]),
            "first_epoch_metric_warm": mean(self.first_metric[warm]),
            "first_epoch_metric_scratch": mean(self.first_metric[~warm]),
            "best_objective": float(np.max(self.objective)) if self.id.size else math.nan,
        }

    def top(self, k: int = 5) -> np.ndarray:
        """Positions of the ``k`` candidates with the highest objective, best first."""
        return np.argsort(-self.objective, kind="stable")[:k]


def summarize(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of a run: warm-start share, transfer size, first-epoch metric.

    Returns
    -------
    dict
        ``n_candidates``, ``n_ok``, ``warm_share`` (share of candidates with a parent),
        ``mean_frac_params_transferred`` (over warm candidates), ``first_epoch_metric_warm``,
        ``first_epoch_metric_scratch``, ``best_objective``.
    """
    return RunSummary.from_dataset(ds).headline()


def top_candidates(ds: xr.Dataset, k: int = 5) -> xr.Dataset:
    """The ``k`` successful candidates with the highest objective, best first."""
    return successful(ds).isel(candidate=RunSummary.from_dataset(ds).top(k))
