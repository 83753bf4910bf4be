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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._results import CURVE_ATTRS, run_attrs
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._states import INITS, CandidateStatus
from ckptnas.storage._topk_registry import TopKRecord, TopKRegistry

#: The status of a (candidate, init) cell that has no full-training run.
MISSING = "missing"


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


@dataclass
class _Cells:
    """The per-(rank, init) arrays of the dataset, filled from the records."""

    ranked: list[int]
    n_epochs: int

    def __post_init__(self) -> None:
        shape = (len(self.ranked), len(INITS))
        self.curves = np.full((*shape, self.n_epochs, len(CURVE_ATTRS)), np.nan)
        self.per_run = {name: np.full(shape, np.nan) for name in _PER_RUN}
        self.status = np.full(shape, MISSING, dtype=object)
        self.objective = np.full(len(self.ranked), np.nan)

    def fill(self, i: int, j: int, r: TopKRecord) -> None:
        self.objective[i] = r.search_objective
        self.status[i, j] = str(r.status)
        if r.curves:
            self.curves[i, j, : len(r.curves)] = r.curves
        for name in _PER_RUN:
            value = len(r.curves) if name == "n_epochs" else getattr(r, name)
            self.per_run[name][i, j] = value

    def elapsed(self) -> np.ndarray:
        """Cumulative wall time at the end of each epoch, set-up included; NaN past the end."""
        epoch_time = self.curves[..., list(CURVE_ATTRS).index("epoch_time")]
        setup = np.nan_to_num(self.per_run["setup_time"])[:, :, None]
        elapsed: np.ndarray = setup + np.nancumsum(epoch_time, axis=2)
        elapsed[np.isnan(epoch_time)] = np.nan
        return elapsed


def _filled_cells(records: list[TopKRecord]) -> _Cells:
    """The cells of every ranked candidate and init, filled from the runs that have a record."""
    cells = _Cells(_ranked(records), max((len(r.curves) for r in records), default=0) or 1)
    by_key = {(r.candidate, r.init): r for r in records}
    for i, candidate in enumerate(cells.ranked):
        for j, init in enumerate(INITS):
            if (candidate, init) in by_key:
                cells.fill(i, j, by_key[candidate, init])
    return cells


def _times_to_target(
    cells: _Cells, elapsed: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds and epochs each successful run took to reach its candidate's target (else NaN, 0)."""
    metric = cells.curves[..., list(CURVE_ATTRS).index("val_metric")]
    ttt = np.full(cells.status.shape, np.nan)
    ett = np.zeros(cells.status.shape, dtype=np.int32)
    for (i, j), status in np.ndenumerate(cells.status):
        if status == CandidateStatus.OK:
            ttt[i, j], ett[i, j] = time_to_target(metric[i, j], elapsed[i, j], float(target[i]))
    return ttt, ett


def build_topk_dataset(
    run_dir: str | Path | RunDir, registry: TopKRegistry, lineage: LineageRegistry
) -> xr.Dataset:
    """Every full-training run of a search as a labelled dataset (see the module docstring).

    Parameters
    ----------
    run_dir : str, Path or RunDir
    registry : TopKRegistry
    lineage : LineageRegistry
        The search's registry, for its metadata.

    Returns
    -------
    xarray.Dataset
    """
    cells = _filled_cells([r for r in registry.runs() if r.status != CandidateStatus.PENDING])
    elapsed = cells.elapsed()
    target = cells.per_run["final_metric"][:, 0].copy()
    ttt, ett = _times_to_target(cells, elapsed, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        speedup = ttt[:, 0] / ttt[:, 1]
    data_vars = {
        "candidate": xr.Variable(
            "rank", np.array(cells.ranked, dtype=np.int64), {"long_name": "search candidate id"}
        ),
        "search_objective": xr.Variable(
            "rank", cells.objective, {"units": "1", "long_name": "objective in the search"}
        ),
        "status": xr.Variable(
            ("rank", "init"), cells.status, {"long_name": "ok, failed or missing"}
        ),
        "elapsed": xr.Variable(
            _DIMS3, elapsed, {"units": "s", "long_name": "cumulative wall time at end of epoch"}
        ),
        **_target_variables(target, ttt, ett, speedup),
        **_curve_variables(cells),
    }
    attrs = run_attrs(lineage, "ckptnas full training of the top-K candidates")
    return xr.Dataset(data_vars, _coords(cells), attrs)


_DIMS3 = ("rank", "init", "epoch")

_PER_RUN = {
    "n_epochs": ("1", "epochs trained"),
    "best_epoch": ("1", "epoch whose weights early stopping kept"),
    "final_metric": ("1", "validation metric of the kept epoch"),
    "setup_time": ("s", "building the model and reading its checkpoint"),
    "test_metric": ("1", "held-out test metric of the kept epoch (NaN: no test split)"),
    "max_epochs": ("1", "epoch budget of the run"),
    "patience": ("1", "early-stopping patience in epochs"),
}


def _coords(cells: _Cells) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    """The coordinates of the dataset: the candidates' ranks, the inits and the epochs."""
    return {
        "rank": (
            "rank",
            np.arange(len(cells.ranked), dtype=np.int32),
            {"long_name": "rank of the candidate in the search, 0 the best", "units": "1"},
        ),
        "init": (
            "init",
            np.array([str(i) for i in INITS], dtype=object),
            {"long_name": "how the full training started: scratch or checkpoint"},
        ),
        "epoch": (
            "epoch",
            np.arange(1, cells.n_epochs + 1, dtype=np.int32),
            {"long_name": "training epoch", "units": "1"},
        ),
    }


def _target_variables(
    target: np.ndarray, ttt: np.ndarray, ett: np.ndarray, speedup: np.ndarray
) -> dict[str, xr.Variable]:
    return {
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


def _curve_variables(cells: _Cells) -> dict[str, xr.Variable]:
    out = {
        name: xr.Variable(_DIMS3, cells.curves[..., k], {"units": units, "long_name": long_name})
        for k, (name, (units, long_name)) in enumerate(CURVE_ATTRS.items())
    }
    for name, (units, long_name) in _PER_RUN.items():
        out[name] = xr.Variable(
            ("rank", "init"), cells.per_run[name], {"units": units, "long_name": long_name}
        )
    return out


def load_topk(run_dir: str | Path | RunDir) -> xr.Dataset:
    """Open a run's ``topk.nc`` fully into memory."""
    path = RunDir(run_dir).topk_results
    if not path.is_file():
        raise FileNotFoundError(f"no full-training results at {path}")
    return xr.load_dataset(path, engine="netcdf4")
