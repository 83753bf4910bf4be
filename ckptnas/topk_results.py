"""The full-training dataset, ``topk.nc``: curves, time to target and speed-up per candidate.

Dims: ``rank`` (0 is the search's best candidate), ``init`` (``scratch``, ``checkpoint``) and
``epoch`` (1..E). The *target* of a candidate is the final validation metric of its scratch run
(the metric of the epoch early stopping kept), so the two runs of one candidate are paired: the
time to target of a run is its wall time (set-up plus epochs, validation included) until the
first epoch whose validation metric reaches the target, and the speed-up is the scratch time
over the checkpoint time. A checkpoint run that never reaches the target gets an infinite time
and a speed-up of 0, so misses count against the method rather than dropping out.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from ckptnas.lineage import LineageRegistry
from ckptnas.results import run_attrs
from ckptnas.topk_registry import INITS, TopKRecord, TopKRegistry

TOPK_FILE = "topk.nc"


def time_to_target(metric: np.ndarray, elapsed: np.ndarray, target: float) -> tuple[float, int]:
    """Wall time and epochs until a curve first reaches a target.

    Parameters
    ----------
    metric : ndarray
        Validation metric per epoch (NaN past the last epoch trained).
    elapsed : ndarray
        Cumulative wall time at the end of each epoch.
    target : float

    Returns
    -------
    (seconds, epochs)
        ``(inf, 0)`` when the curve never reaches the target, ``(nan, 0)`` when the target is NaN.

    Examples
    --------
    >>> time_to_target(np.array([0.1, 0.5, 0.7]), np.array([1.0, 2.0, 3.0]), 0.5)
    (2.0, 2)
    """
    if not math.isfinite(target):
        return math.nan, 0
    reached = np.flatnonzero(np.nan_to_num(metric, nan=-np.inf) >= target)
    if reached.size == 0:
        return math.inf, 0
    return float(elapsed[reached[0]]), int(reached[0]) + 1


def _ranked(records: list[TopKRecord]) -> list[int]:
    objective = {r.candidate: r.search_objective for r in records}
    return sorted(objective, key=lambda c: (-np.nan_to_num(objective[c], nan=-np.inf), c))


def build_topk_dataset(
    run_dir: str | Path, registry: TopKRegistry, lineage: LineageRegistry
) -> xr.Dataset:
    """Every full-training run of a search as a labelled dataset (see the module docstring).

    Parameters
    ----------
    run_dir : str or Path
    registry : TopKRegistry
    lineage : LineageRegistry
        The search's registry, for its metadata.

    Returns
    -------
    xarray.Dataset
    """
    records = [r for r in registry.runs() if r.status != "pending"]
    ranked = _ranked(records)
    n, n_init = len(ranked), len(INITS)
    n_epochs = max((len(r.curves) for r in records), default=0) or 1
    curves = np.full((n, n_init, n_epochs, 4), np.nan)
    per_run = {name: np.full((n, n_init), np.nan) for name in _PER_RUN}
    status = np.full((n, n_init), "missing", dtype=object)
    objective = np.full(n, np.nan)
    by_key = {(r.candidate, r.init): r for r in records}
    for i, candidate in enumerate(ranked):
        for j, init in enumerate(INITS):
            r = by_key.get((candidate, init))
            if r is None:
                continue
            objective[i] = r.search_objective
            status[i, j] = r.status
            if r.curves:
                curves[i, j, : len(r.curves)] = r.curves
            per_run["best_epoch"][i, j] = r.best_epoch
            per_run["n_epochs"][i, j] = len(r.curves)
            per_run["final_metric"][i, j] = r.final_metric
            per_run["setup_time"][i, j] = r.setup_time
            per_run["max_epochs"][i, j] = r.max_epochs
            per_run["patience"][i, j] = r.patience
    elapsed = np.nan_to_num(per_run["setup_time"])[:, :, None] + np.nancumsum(
        curves[..., 3], axis=2
    )
    elapsed[np.isnan(curves[..., 3])] = np.nan
    target = per_run["final_metric"][:, 0].copy()
    ttt = np.full((n, n_init), np.nan)
    ett = np.zeros((n, n_init), dtype=np.int32)
    for i in range(n):
        for j in range(n_init):
            if status[i, j] == "ok":
                ttt[i, j], ett[i, j] = time_to_target(curves[i, j, :, 2], elapsed[i, j], target[i])
    with np.errstate(divide="ignore", invalid="ignore"):
        speedup = ttt[:, 0] / ttt[:, 1]
    return _assemble(
        ranked, objective, curves, elapsed, per_run, status, target, ttt, ett, speedup, lineage
    )


_PER_RUN = {
    "n_epochs": ("1", "epochs trained"),
    "best_epoch": ("1", "epoch whose weights early stopping kept"),
    "final_metric": ("1", "validation metric of the kept epoch"),
    "setup_time": ("s", "building the model and reading its checkpoint"),
    "max_epochs": ("1", "epoch budget of the run"),
    "patience": ("1", "early-stopping patience in epochs"),
}

_CURVES = {
    "train_loss": ("1", "mean training loss of the epoch"),
    "val_loss": ("1", "validation loss after the epoch"),
    "val_metric": ("1", "validation metric after the epoch (R2 or accuracy)"),
    "epoch_time": ("s", "wall time of the epoch, validation included"),
}


def _assemble(
    ranked: list[int],
    objective: np.ndarray,
    curves: np.ndarray,
    elapsed: np.ndarray,
    per_run: dict[str, np.ndarray],
    status: np.ndarray,
    target: np.ndarray,
    ttt: np.ndarray,
    ett: np.ndarray,
    speedup: np.ndarray,
    lineage: LineageRegistry,
) -> xr.Dataset:
    dims3 = ("rank", "init", "epoch")
    data_vars: dict[str, xr.Variable] = {
        "candidate": xr.Variable(
            "rank", np.array(ranked, dtype=np.int64), {"long_name": "search candidate id"}
        ),
        "search_objective": xr.Variable(
            "rank", objective, {"units": "1", "long_name": "objective in the search"}
        ),
        "status": xr.Variable(("rank", "init"), status, {"long_name": "ok, failed or missing"}),
        "elapsed": xr.Variable(
            dims3, elapsed, {"units": "s", "long_name": "cumulative wall time at end of epoch"}
        ),
        "target": xr.Variable(
            "rank", target, {"units": "1", "long_name": "final validation metric of scratch run"}
        ),
        "time_to_target": xr.Variable(
            ("rank", "init"), ttt, {"units": "s", "long_name": "wall time to reach the target"}
        ),
        "epochs_to_target": xr.Variable(
            ("rank", "init"), ett, {"units": "1", "long_name": "epochs to reach target, 0: never"}
        ),
        "speedup": xr.Variable(
            "rank",
            speedup,
            {"units": "1", "long_name": "scratch over checkpoint time to target (0: missed)"},
        ),
    }
    for k, (name, (units, long_name)) in enumerate(_CURVES.items()):
        data_vars[name] = xr.Variable(
            dims3, curves[..., k], {"units": units, "long_name": long_name}
        )
    for name, (units, long_name) in _PER_RUN.items():
        data_vars[name] = xr.Variable(
            ("rank", "init"), per_run[name], {"units": units, "long_name": long_name}
        )
    coords = {
        "rank": ("rank", np.arange(len(ranked), dtype=np.int32)),
        "init": ("init", np.array(INITS, dtype=object)),
        "epoch": ("epoch", np.arange(1, curves.shape[2] + 1, dtype=np.int32)),
    }
    attrs = run_attrs(lineage, "ckptnas full training of the top-K candidates")
    return xr.Dataset(data_vars, coords, attrs)


def load_topk(run_dir: str | Path) -> xr.Dataset:
    """Open a run's ``topk.nc`` fully into memory."""
    path = Path(run_dir) / TOPK_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no full-training results at {path}")
    return xr.load_dataset(path, engine="netcdf4")
