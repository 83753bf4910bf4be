"""The Pareto front of a run judged by two or more objectives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ckptnas.analysis._figures import save
from ckptnas.storage import CandidateStatus

#: What each objective's values are read from in ``results.nc``.
_VARIABLE = {"val_metric": "objective", "n_params": "n_params", "latency": "latency"}


def _values(results: xr.Dataset, objective: str) -> np.ndarray:
    if objective == "val_loss":
        last = results.val_loss.ffill("epoch").isel(epoch=-1)
        return np.asarray(last.values, dtype=float)
    return np.asarray(results[_VARIABLE[objective]].values, dtype=float)


def pareto_front(results: xr.Dataset, path: str | Path) -> Path:
    """The successful candidates in the plane of the first two objectives, the front marked.

    Parameters
    ----------
    results : xarray.Dataset
        A run's results with a ``pareto`` variable (two or more ``[search] objectives``).
    path : str or Path
        The PNG file to write.
    """
    x_name, y_name = results.attrs["objectives"].split()[:2]
    ok = results.status.values == CandidateStatus.OK
    front = ok & (results.pareto.values == 1)
    x, y = _values(results, x_name), _values(results, y_name)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.scatter(x[ok & ~front], y[ok & ~front], s=14, color="tab:gray", label="dominated")
    order = np.argsort(x[front])
    ax.step(x[front][order], y[front][order], where="post", color="tab:red", lw=1)
    ax.scatter(x[front], y[front], s=22, color="tab:red", label="Pareto front")
    directions = results.attrs["directions"].split()
    ax.set_xlabel(f"{x_name} ({directions[0]})")
    ax.set_ylabel(f"{y_name} ({directions[1]})")
    if y_name in ("n_params", "latency"):
        ax.set_yscale("log")
    ax.set_title(f"Pareto front: {int(front.sum())} of {int(ok.sum())} candidates", fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, path)
