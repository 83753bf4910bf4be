"""The variables of ``results.nc`` with one value per candidate, read off the registry's rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ckptnas.storage._records import CandidateRecord
from ckptnas.storage._states import Deletion

#: ``checkpoint_deleted``'s flag of each reason: 0 while kept.
_DELETED_FLAGS: dict[str, int] = {Deletion.USEFUL: 1, Deletion.MAX_BYTES: 2}


def variable(values: list[Any], dtype: Any, units: str, long_name: str) -> xr.Variable:
    """One variable along ``candidate``, with its units (if any) and long name."""
    attrs = {"long_name": long_name} | ({"units": units} if units else {})
    return xr.Variable("candidate", np.array(values, dtype=dtype), attrs)


def per_candidate_variables(records: list[CandidateRecord]) -> dict[str, xr.Variable]:
    """The variables of :func:`build_dataset` with one value per candidate."""
    out = {
        "parent": variable(
            [-1 if r.parent is None else r.parent for r in records],
            np.int32,
            "1",
            "donor candidate the weights came from, -1 when trained from scratch",
        ),
        "parent_run": variable(
            [r.parent_run for r in records],
            object,
            "",
            "run directory of a donor from an earlier run, empty for a donor of this run",
        ),
        "n_transferred": variable(
            [len(r.transferred) for r in records], np.int32, "1", "tensors copied from the donor"
        ),
        "frac_params_transferred": variable(
            [r.frac_params_transferred for r in records],
            float,
            "1",
            "fraction of the candidate's parameters copied from the donor",
        ),
        "prefix_length": variable(
            [r.prefix_length for r in records],
            np.int32,
            "1",
            "architecture choices shared with the donor",
        ),
        "objective": variable(
            [r.objective for r in records], float, "1", "final validation metric, higher is better"
        ),
        "status": variable([str(r.status) for r in records], object, "", "ok or failed"),
        "stage": variable(
            [r.stage for r in records],
            object,
            "",
            "stage of the search its strategy proposed it in (empty: not recorded)",
        ),
        "n_params": variable([r.n_params for r in records], np.int64, "1", "parameters"),
        "latency": variable(
            [r.latency for r in records],
            float,
            "s",
            "median time of a forward pass over 256 validation rows, after training",
        ),
        "worker": variable([r.worker for r in records], object, "", "Dask worker"),
        "device": variable([r.device for r in records], object, "", "training device"),
        "attempts": variable([r.attempts for r in records], np.int32, "1", "attempts made"),
        "error": variable([r.error for r in records], object, "", "why it failed"),
        "checkpoint_deleted": _deleted(records),
    }
    for attr in ("submit_time", "start_time", "end_time"):
        out[attr] = xr.Variable(
            "candidate",
            _times(records, attr),
            {"long_name": attr.replace("_", " "), "standard_name": "time"},
        )
    return out


def _deleted(records: list[CandidateRecord]) -> xr.Variable:
    """``checkpoint_deleted``: whether, and why, ``[storage]`` deleted the checkpoint."""
    # A reason this version does not know (a newer one's) still reads as deleted.
    flags = [
        _DELETED_FLAGS.get(r.checkpoint_deleted, 3) if r.checkpoint_deleted else 0 for r in records
    ]
    attrs = {
        "long_name": "whether the run's [storage] policy deleted the checkpoint, and why",
        "units": "1",
        "flag_values": np.array([0, 1, 2, 3], dtype=np.int8),
        "flag_meanings": "not_deleted deleted_by_keep deleted_by_max_bytes deleted_otherwise",
    }
    return xr.Variable("candidate", np.array(flags, dtype=np.int8), attrs)


def _times(records: list[CandidateRecord], attr: str) -> np.ndarray:
    seconds = np.array([getattr(r, attr) for r in records], dtype=float)
    out = np.full(len(records), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(seconds)
    out[ok] = (seconds[ok] * 1e9).astype("int64").astype("datetime64[ns]")
    return out
