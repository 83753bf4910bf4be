"""A run's headline numbers and best candidates, as ``run``, ``summary`` and ``report`` print."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.analysis._held_out import held_out_facts
from ckptnas.storage import RunDir, checkpoint_usage, reclaimed, recorded_config

if TYPE_CHECKING:
    import xarray as xr

    from ckptnas.analysis import RunSummary


def print_summary(ds: xr.Dataset, run_dir: Path, k: int = 5) -> None:
    """Print a run's headline numbers and its best candidates, from its results dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        The run's results, as :func:`ckptnas.load_results` returns them.
    run_dir : Path
        The run directory, printed first and asked for its checkpoints' disk use.
    k : int
        How many of the best candidates to list.
    """
    from ckptnas.analysis import RunSummary

    print_run_summary(RunSummary.from_dataset(ds), ds.attrs.get("metric", "metric"), run_dir, k)


def print_run_summary(summary: RunSummary, metric: str, run_dir: Path, k: int) -> None:
    """Print ``summary``'s headline numbers and its ``k`` best candidates by ``metric``."""
    s = {k: _number(v) for k, v in summary.headline().items()}
    print(f"run directory: {run_dir}")
    print(
        f"candidates: {s['n_candidates']} ({s['n_ok']} ok), warm-started: "
        f"{s['warm_share']:.0%}, mean fraction of parameters transferred (warm): "
        f"{s['mean_frac_params_transferred']:.2f}"
    )
    print(
        f"mean first-epoch validation {metric}: warm {s['first_epoch_metric_warm']:.4f}, "
        f"scratch {s['first_epoch_metric_scratch']:.4f}"
    )
    usage = checkpoint_usage(run_dir)
    if usage.n_checkpoints:
        print(usage.describe())
    deleted = reclaimed(run_dir, usage.bytes_on_disk)
    if deleted is not None:  # what [storage] deleted
        print(deleted.describe())
    files = RunDir(run_dir)
    for label, value in held_out_facts(files, recorded_config(files, missing_ok=True), metric):
        print(f"{label}: {value}")
    top = summary.top(k)
    print(f"\ntop {len(top)} candidates by validation {metric}:")
    print(f"{'id':>5} {'objective':>10} {'parent':>6} {'transferred':>11} {'params':>9}")
    for i in top:
        parent = int(summary.parent[i])
        print(
            f"{int(summary.id[i]):>5} {float(summary.objective[i]):>10.4f} "
            f"{parent if parent >= 0 else '-':>6} "
            f"{float(summary.frac_params_transferred[i]):>10.0%} {int(summary.n_params[i]):>9}"
        )


class _NoValue:
    """An undefined number (no warm candidate, say): printed as "none", never as "nan"."""

    def __format__(self, spec: str) -> str:
        return "none"


def _number(x: float) -> float | _NoValue:
    return _NoValue() if isinstance(x, float) and math.isnan(x) else x
