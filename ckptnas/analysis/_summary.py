"""A run's headline numbers and best candidates, from its results dataset."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckptnas.storage import CandidateStatus


def successful(ds: xr.Dataset) -> xr.Dataset:
    """The candidates whose status is ``ok``, variables keeping their types."""
    return ds.isel(candidate=np.flatnonzero(ds.status.values == CandidateStatus.OK))


def summarize(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of a run: warm-start share, transfer size, first-epoch metric.

    Returns
    -------
    dict
        ``n_candidates``, ``n_ok``, ``warm_share`` (share of candidates with a parent),
        ``mean_frac_params_transferred`` (over warm candidates), ``first_epoch_metric_warm``,
        ``first_epoch_metric_scratch``, ``best_objective``.
    """
    ok = successful(ds)
    warm = ok.parent >= 0
    first = ok.val_metric.isel(epoch=0)

    def mean(x: xr.DataArray) -> float:
        return float(x.mean()) if x.size else float("nan")

    return {
        "n_candidates": int(ds.sizes["candidate"]),
        "n_ok": int(ok.sizes["candidate"]),
        "warm_share": mean(warm.astype(float)),
        "mean_frac_params_transferred": mean(ok.frac_params_transferred.where(warm, drop=True)),
        "first_epoch_metric_warm": mean(first.where(warm, drop=True)),
        "first_epoch_metric_scratch": mean(first.where(~warm, drop=True)),
        "best_objective": float(ok.objective.max()) if ok.sizes["candidate"] else float("nan"),
    }


def top_candidates(ds: xr.Dataset, k: int = 5) -> xr.Dataset:
    """The ``k`` successful candidates with the highest objective, best first."""
    ok = successful(ds)
    order = np.argsort(-ok.objective.values, kind="stable")[:k]
    return ok.isel(candidate=order)
