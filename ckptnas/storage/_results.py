"""The results dataset: every measurement of a run as one xarray Dataset in ``results.nc``.

The registry is the durable record; ``results.nc`` is its labelled, analysis-ready view,
rewritten as a whole on a timer and at the end of a run. Each write goes to a temporary file
that is renamed into place, so the file on disk is complete at every moment.

Schema (dims ``candidate``, ``epoch`` = 1..E, ``node``; ``Conventions = "CF-1.11"``):
``arch(candidate, node)``, ``arch_str``, ``parent``, ``n_transferred``,
``frac_params_transferred``, ``prefix_length``, ``objective``, ``status``, ``stage``, ``n_params``,
``latency``, ``worker``, ``device``, ``attempts``, ``error``, ``submit_time``, ``start_time``,
``end_time`` per candidate; ``train_loss``, ``val_loss``, ``val_metric``, ``epoch_time`` per
candidate and epoch; and, when ``[search.hyperparameters]`` searches them,
``learning_rate``, ``batch_size``, ``weight_decay``, ``dropout`` per candidate; with several
``[search] objectives``, ``pareto`` (1 on the front of the successful candidates, else 0).
Attributes ``objectives`` and ``directions`` name them. With a scheduler of several rungs
(``[search] scheduler = "asha"``, ``"hyperband"``, ``"median"``), ``rung`` and
``epochs_trained`` per candidate; its curves are NaN past the epochs it trained.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal, overload

import dask
import numpy as np
import pandas as pd
import xarray as xr

from ckptnas._version import package_version
from ckptnas.config import Config, SearchConfig
from ckptnas.plugins import registry
from ckptnas.storage._atomic import refused_write, replacing
from ckptnas.storage._candidate_variables import per_candidate_variables
from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._pareto import non_dominated
from ckptnas.storage._records import CandidateRecord
from ckptnas.storage._results_coords import results_coords
from ckptnas.storage._results_rows import ResultsRows
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._sqlite import CURVE_NAMES, Curve
from ckptnas.storage._states import CandidateStatus

#: Units and long name of each per-epoch curve, in :data:`CURVE_NAMES` order.
CURVE_ATTRS = dict(
    zip(
        CURVE_NAMES,
        (
            ("1", "mean training loss of the epoch"),
            ("1", "validation loss after the epoch"),
            ("1", "validation metric after the epoch (R2 or accuracy)"),
            ("s", "wall time of the epoch, validation included"),
        ),
        strict=True,
    )
)


#: Long names of the searched hyperparameters' variables (all dimensionless).
HYPERPARAMETER_NAMES = {
    "learning_rate": "Adam learning rate",
    "batch_size": "rows per optimisation step",
    "weight_decay": "Adam weight decay (L2 penalty)",
    "dropout": "dropout rate of the hidden layers",
}


def _hyperparameter_variables(records: list[CandidateRecord]) -> dict[str, xr.Variable]:
    """One variable per hyperparameter searched in the run, NaN where a candidate lacks it."""
    names = sorted({name for r in records for name in r.hyperparameters})
    return {
        name: xr.Variable(
            "candidate",
            np.array([r.hyperparameters.get(name, np.nan) for r in records], dtype=float),
            {
                "long_name": HYPERPARAMETER_NAMES.get(name, name) + ", searched per candidate",
                "units": "1",
            },
        )
        for name in names
    }


def _rung_variables(
    records: list[CandidateRecord], curves: dict[int, list[Curve]], config: Config
) -> dict[str, xr.Variable]:
    """``rung`` and ``epochs_trained`` per candidate, when a scheduler stopped some early.

    The run's scheduler, made from its recorded configuration through the scheduler registry,
    is the one that says which rung a candidate reached.
    """
    search = config.search
    rungs = registry("scheduler").get(search.scheduler).from_config(search, config.training.epochs)
    if len(rungs.rung_epochs) < 2:
        return {}
    trained = np.array([len(curves.get(r.id, [])) for r in records], dtype=np.int32)
    reached = np.array([rungs.rung_of(int(t)) for t in trained], dtype=np.int32)
    return {
        "rung": xr.Variable(
            "candidate",
            reached,
            {
                "long_name": "rung reached (0: the first; -1: none)",
                "units": "1",
                "rung_epochs": np.array(rungs.rung_epochs, dtype=np.int32),
            },
        ),
        "epochs_trained": xr.Variable(
            "candidate", trained, {"long_name": "epochs trained", "units": "1"}
        ),
    }


def _pareto_variable(
    records: list[CandidateRecord], curves: dict[int, list[Curve]], search: SearchConfig
) -> dict[str, xr.Variable]:
    """``pareto``: 1 for the successful candidates no other dominates in every objective."""
    if len(search.objectives) < 2:
        return {}
    # The values the client stored when it recorded each candidate (what the strategy was
    # told). A run written before version 4 stored none: then each objective's entry computes
    # its own from what the candidate measured (found through the registry: storage sits
    # below the search).
    stored = all(
        len(r.objective_values) == len(search.objectives)
        for r in records
        if r.status == CandidateStatus.OK
    )
    entries = [] if stored else [registry("objective").get(name) for name in search.objectives]

    def measured(r: CandidateRecord) -> dict[str, float]:
        return {
            "val_metric": r.objective,
            "val_loss": curves[r.id][-1][1] if curves.get(r.id) else np.nan,
            "n_params": float(r.n_params),
            "latency": r.latency,
        }

    def of(r: CandidateRecord) -> list[float]:
        if r.status != CandidateStatus.OK:
            return [np.nan] * len(search.objectives)
        if stored:  # as the client computed them when it recorded the candidate
            return list(r.objective_values)
        return [e.value(measured(r)) for e in entries]  # a run written before version 4

    values = np.array([of(r) for r in records], dtype=float).reshape(
        len(records), len(search.objectives)
    )
    maximize = [d == "maximize" for d in search.resolved_directions]
    front = non_dominated(values, maximize).astype(np.int8)
    attrs = {
        "long_name": "on the Pareto front of the objectives "
        + ", ".join(
            f"{o} ({d})" for o, d in zip(search.objectives, search.resolved_directions, strict=True)
        ),
        "units": "1",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "dominated non_dominated",
    }
    return {"pareto": xr.Variable("candidate", front, attrs)}


def build_dataset(registry: LineageRegistry, n_epochs: int | None = None) -> xr.Dataset:
    """The results of every finished candidate in a registry as an xarray Dataset.

    Parameters
    ----------
    registry : LineageRegistry
    n_epochs : int, optional
        Length of the ``epoch`` dimension; defaults to the longest curve recorded.

    Returns
    -------
    xarray.Dataset
    """
    return dataset_of(ResultsRows(registry).refresh(), n_epochs)


def dataset_of(rows: ResultsRows, n_epochs: int | None = None) -> xr.Dataset:
    """The results dataset of the rows read from a registry (see :func:`build_dataset`)."""
    registry, config = rows.registry, rows.config
    records = rows.finished()
    curves = rows.curves
    search = config.search
    longest = max((len(c) for c in curves.values()), default=0)
    n_epochs = max(n_epochs or 0, longest, 1)
    space = json.loads(registry.get_meta("space") or "{}")
    node_names = space.get("node_names") or [
        f"node{i}" for i in range(len(records[0].arch) if records else 0)
    ]
    arch = np.array([r.arch for r in records], dtype=np.int32).reshape(
        len(records), len(node_names)
    )
    data_vars = {
        "arch": xr.Variable(
            ("candidate", "node"), arch, {"long_name": "choice of each variable node", "units": "1"}
        ),
        "arch_str": xr.Variable(
            "candidate",
            np.array([rows.described[r.id] for r in records], dtype=object),
            {"long_name": "the architecture in words"},
        ),
        **per_candidate_variables(records),
        **_hyperparameter_variables(records),
        **_pareto_variable(records, curves, search),
        **_rung_variables(records, curves, config),
        **_curve_variables(records, curves, n_epochs),
    }
    coords = results_coords(records, n_epochs, node_names)
    attrs = run_attrs(registry, "ckptnas search results") | {
        "objectives": " ".join(search.objectives),
        "directions": " ".join(search.resolved_directions),
    }
    return xr.Dataset(data_vars, coords, attrs)


def _curve_variables(
    records: list[CandidateRecord], curves: dict[int, list[Curve]], n_epochs: int
) -> dict[str, xr.Variable]:
    """The per-epoch curves of each candidate, NaN past the epochs it trained."""
    curve = np.full((len(records), n_epochs, len(CURVE_NAMES)), np.nan)
    for i, record in enumerate(records):
        values = curves.get(record.id, [])
        if values:
            curve[i, : len(values)] = values
    return {
        name: xr.Variable(
            ("candidate", "epoch"), curve[:, :, k], {"units": units, "long_name": long_name}
        )
        for k, (name, (units, long_name)) in enumerate(CURVE_ATTRS.items())
    }


def run_attrs(registry: LineageRegistry, title: str) -> dict[str, str | int]:
    """The attributes every dataset of a run carries: version, resolved config, data, policy."""
    created = registry.get_meta("created")
    # CF's audit trail: when and by what the run was made (not when this file was last
    # rewritten, so that the same registry always gives the same dataset).
    history = f"ckptnas {package_version()}: {title}"
    return {
        "title": title,
        "Conventions": "CF-1.11",
        "history": history if created is None else f"{created}: {history}",
        "ckptnas_version": package_version(),
        "config": registry.get_meta("config") or "",
        "space": registry.get_meta("space") or "",
        "dataset": registry.get_meta("dataset") or "",
        "task": registry.get_meta("task") or "",
        "metric": registry.get_meta("metric") or "",
        "policy": registry.get_meta("policy") or "",
        # netCDF has no boolean attributes: 1 when transferred tensors were frozen, else 0
        "freeze": int(registry.get_meta("freeze") or 0),
        # Runs made before [training] precision existed trained in float32.
        "precision": registry.get_meta("precision") or "float32",
        "seed": int(registry.get_meta("seed") or 0),
    }


def write_dataset(ds: xr.Dataset, path: str | Path) -> None:
    """Write a dataset as netCDF4 through a temporary file renamed into place."""
    # The dataset is in memory. Without this, xarray sees the run's distributed Client and
    # guards every variable write with a scheduler-wide lock, a round trip to the scheduler each
    # time: about 0.2 s per write of a small results.nc, as long as a one-epoch candidate.
    with replacing(Path(path)) as tmp, dask.config.set(scheduler="synchronous"):
        try:
            _times_as_cf_seconds(ds).to_netcdf(tmp, engine="netcdf4")
        except RuntimeError as exc:  # the netCDF library's own errors
            raise refused_write(Path(path), tmp, str(exc)) from None


#: The one unit of every time variable on disk (CF; ``ncdump -t`` and cftime decode it).
TIME_UNITS = "seconds since 1970-01-01 00:00:00 UTC"


def _times_as_cf_seconds(ds: xr.Dataset) -> xr.Dataset:
    """Datetime variables as float seconds since the epoch with :data:`TIME_UNITS`.

    xarray would write its own unit per variable (``nanoseconds since`` its first value, with
    no time zone); this writes one unit for all, which every netCDF reader decodes, and
    :func:`load_results` turns back into datetimes.
    """
    out = ds.copy()
    for name, var in ds.variables.items():
        if np.issubdtype(var.dtype, np.datetime64):
            seconds = (var.values - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
            # Clock times read from time.time(), which counts no leap seconds (CF 4.4.1).
            attrs = var.attrs | {
                "units": TIME_UNITS,
                "calendar": "standard",
                "units_metadata": "leap_seconds: none",
            }
            out[name] = xr.Variable(var.dims, seconds.astype(np.float64), attrs)
    return out


@overload
def load_results(
    run_dir: str | Path | RunDir, per_candidate: Literal[False] = False
) -> xr.Dataset: ...
@overload
def load_results(run_dir: str | Path | RunDir, per_candidate: Literal[True]) -> pd.DataFrame: ...
def load_results(
    run_dir: str | Path | RunDir, per_candidate: bool = False
) -> xr.Dataset | pd.DataFrame:
    """Open a run's ``results.nc`` fully into memory.

    Parameters
    ----------
    run_dir : str, Path or RunDir
    per_candidate : bool
        Return one row per candidate as a :class:`pandas.DataFrame` (the variables without an
        ``epoch`` or ``node`` dimension, the architecture as ``arch_str``) instead of the
        dataset, whose ``to_dataframe()`` would repeat each candidate once per epoch and node.

    Returns
    -------
    xarray.Dataset or pandas.DataFrame
        See this module's docstring for the variables.
    """
    path = RunDir(run_dir).results
    if not path.is_file():
        raise FileNotFoundError(f"no results at {path}")
    ds = xr.load_dataset(path, engine="netcdf4")
    for var in ds.variables.values():  # decoded times: their on-disk details go with the rest
        if np.issubdtype(var.dtype, np.datetime64) and "units_metadata" in var.attrs:
            var.encoding["units_metadata"] = var.attrs.pop("units_metadata")
    if per_candidate:
        return ds.drop_dims(["epoch", "node"]).to_dataframe()
    return ds


class ResultsWriter:
    """Rewrite ``results.nc`` from the registry, at most every ``interval`` seconds.

    The registry's rows are kept in memory and only those that changed are read again
    (:class:`ResultsRows`); the file itself is written whole, through a temporary file renamed
    into place, so that a reader never sees half of one. The write of a long run's file takes
    longer, so :meth:`maybe_flush` waits at least the last write's time divided by ``share``:
    at most that share of the client's time goes into ``results.nc``, however long the run.

    Parameters
    ----------
    run_dir : str, Path or RunDir
    registry : LineageRegistry
    n_epochs : int
    interval : float
        Seconds between writes in :meth:`maybe_flush`; :meth:`flush` always writes.
    share : float
        The largest share of the client's time spent writing ``results.nc`` while running.
    """

    def __init__(
        self,
        run_dir: str | Path | RunDir,
        registry: LineageRegistry,
        n_epochs: int,
        interval: float = 5.0,
        share: float = 0.1,
    ) -> None:
        self.path = RunDir(run_dir).results
        self.registry = registry
        self.n_epochs = n_epochs
        self.interval = interval
        self.share = share
        self.rows: ResultsRows | None = None
        self._next = -np.inf
        #: Seconds the last write took, the registry's checkpoint included.
        self.write_seconds = np.nan

    def maybe_flush(self) -> bool:
        """Write if the interval has passed since the last write; returns whether it wrote."""
        if time.monotonic() < self._next:
            return False
        self.flush()
        return True

    def flush(self) -> xr.Dataset:
        """Write the dataset now, and return it."""
        start = time.monotonic()
        if self.rows is None:
            self.rows = ResultsRows(self.registry)
        ds = dataset_of(self.rows.refresh(), self.n_epochs)
        write_dataset(ds, self.path)
        # With each results.nc, the registry's file is brought up to date too: a run is never
        # a 4 KiB lineage.sqlite with everything in its -wal file.
        self.registry.checkpoint()
        end = time.monotonic()
        self.write_seconds = end - start
        self._next = end + max(self.interval, self.write_seconds / self.share)
        return ds
