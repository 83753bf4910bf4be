"""Comparing searches: runs gathered into one dataset over ``policy`` and ``seed``, and tested.

:func:`gather` reads the ``results.nc`` (and, where present, ``topk.nc``) of several run
directories into one :class:`xarray.Dataset` with dims ``policy`` (``none``, ``lcp``,
``lcp+freeze``, ...), ``seed``, ``evaluation`` (candidates in the order they finished) and
``epoch``; full-training results add ``rank`` and ``init``. :func:`mann_whitney` tests whether
one policy's candidate objectives are stochastically greater than another's, pooled over seeds;
:func:`speedup_summary` summarises the top-K time-to-target speed-ups (both in
:mod:`ckptnas.compare_stats`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ckptnas._version import package_version
from ckptnas.errors import ComparisonError
from ckptnas.storage import (
    INITS,
    CandidateStatus,
    RunDir,
    load_results,
    load_topk,
    refuse_overwrite,
    write_dataset,
)

COMPARISON_FILE = "comparison.nc"


def policy_label(policy: str, freeze: bool) -> str:
    """The label of a transfer setting: ``none``, or the policy with ``+freeze`` when frozen."""
    return "none" if policy == "none" else f"{policy}+freeze" if freeze else policy


@dataclass(frozen=True)
class _Run:
    label: str
    seed: int
    path: Path
    results: xr.Dataset
    topk: xr.Dataset | None


def _read_run(path: Path) -> _Run:
    try:
        ds = load_results(path)
    except FileNotFoundError:
        raise ComparisonError(f"{str(path)!r} holds no results.nc") from None
    config = tomllib.loads(str(ds.attrs.get("config", "")))
    transfer = config.get("transfer", {})
    label = policy_label(transfer.get("policy", "lcp"), bool(transfer.get("freeze", True)))
    topk = load_topk(path) if RunDir(path).topk_results.is_file() else None
    return _Run(label, int(ds.attrs.get("seed", 0)), path, ds, topk)


def _order(labels: Sequence[str]) -> list[str]:
    """Policies in a fixed reading order: ``none`` first, then as given."""
    unique = list(dict.fromkeys(labels))
    return sorted(unique, key=lambda p: (p != "none", unique.index(p)))


def gather(run_dirs: Sequence[str | Path]) -> xr.Dataset:
    """Gather runs of one dataset into a dataset with ``policy`` and ``seed`` dimensions.

    Parameters
    ----------
    run_dirs : sequence of str or Path
        Run directories, each holding ``results.nc``; at most one per (policy, seed).

    Returns
    -------
    xarray.Dataset
        ``objective``, ``warm``, ``frac_params_transferred``, ``elapsed`` (seconds from the
        run's first submission to the candidate's end) and ``best_so_far`` over
        ``(policy, seed, evaluation)``; ``val_metric`` and ``val_loss`` over ``(..., epoch)``;
        ``wall_time`` and ``run_dir`` per ``(policy, seed)``; with full-training results,
        ``topk_*`` variables over ``(policy, seed, rank[, init[, topk_epoch]])``. Cells
        without a run are NaN.

    Raises
    ------
    ComparisonError
        If there are no runs, a run has no results, the runs used different datasets or
        metrics, or two runs share a (policy, seed).
    """
    if not run_dirs:
        raise ComparisonError("no run directories to compare")
    runs = [_read_run(Path(p)) for p in run_dirs]
    for attr in ("dataset", "metric"):
        values = {str(r.results.attrs.get(attr, "")) for r in runs}
        if len(values) > 1:
            raise ComparisonError(f"runs used different {attr}s: {', '.join(sorted(values))}")
    cells: dict[tuple[str, int], _Run] = {}
    for run in runs:
        key = (run.label, run.seed)
        if key in cells:
            raise ComparisonError(
                f"{str(cells[key].path)!r} and {str(run.path)!r} are both policy {run.label!r}, "
                f"seed {run.seed}"
            )
        cells[key] = run
    policies = _order([r.label for r in runs])
    seeds = sorted({r.seed for r in runs})
    ds: xr.Dataset = _search_vars(cells, policies, seeds)
    if any(r.topk is not None for r in runs):
        ds = ds.merge(_topk_vars(cells, policies, seeds))
    ds.attrs = {
        "title": "ckptnas comparison of transfer policies",
        "ckptnas_version": package_version(),
        "dataset": str(runs[0].results.attrs.get("dataset", "")),
        "metric": str(runs[0].results.attrs.get("metric", "")),
    }
    return ds


def _search_vars(
    cells: dict[tuple[str, int], _Run], policies: list[str], seeds: list[int]
) -> xr.Dataset:
    n_eval = max(r.results.sizes["candidate"] for r in cells.values())
    n_epoch = max(r.results.sizes["epoch"] for r in cells.values())
    shape = (len(policies), len(seeds), n_eval)
    per = {k: np.full(shape, np.nan) for k in ("candidate_id", "objective", "warm", "frac", "t")}
    curves = {k: np.full((*shape, n_epoch), np.nan) for k in ("val_metric", "val_loss")}
    wall = np.full(shape[:2], np.nan)
    paths = np.full(shape[:2], "", dtype=object)
    for (label, seed), run in cells.items():
        i, j, r = policies.index(label), seeds.index(seed), run.results
        end = r.end_time.values.astype("datetime64[ns]").astype("int64") / 1e9
        end[np.isnat(r.end_time.values)] = np.nan
        start = r.submit_time.values.astype("datetime64[ns]").astype("int64") / 1e9
        t0 = np.nanmin(np.where(np.isnat(r.submit_time.values), np.nan, start))
        order = np.argsort(np.nan_to_num(end, nan=np.inf), kind="stable")
        n = len(order)
        ok = r.status.values[order] == CandidateStatus.OK
        per["candidate_id"][i, j, :n] = r.candidate.values[order]
        per["objective"][i, j, :n] = np.where(ok, r.objective.values[order], np.nan)
        per["warm"][i, j, :n] = (r.parent.values[order] >= 0).astype(float)
        per["frac"][i, j, :n] = r.frac_params_transferred.values[order]
        per["t"][i, j, :n] = end[order] - t0
        for name, values in curves.items():
            values[i, j, :n, : r.sizes["epoch"]] = r[name].values[order]
        wall[i, j] = np.nanmax(end) - t0
        paths[i, j] = str(run.path)
    best = np.fmax.accumulate(np.nan_to_num(per["objective"], nan=-np.inf), axis=2)
    best[np.isinf(best)] = np.nan
    best[np.isnan(per["t"])] = np.nan
    dims = ("policy", "seed", "evaluation")
    return xr.Dataset(
        {
            "candidate_id": (dims, per["candidate_id"], {"long_name": "candidate id in its run"}),
            "objective": (dims, per["objective"], {"units": "1", "long_name": "final metric"}),
            "warm": (dims, per["warm"], {"long_name": "1 when warm-started, 0 from scratch"}),
            "frac_params_transferred": (dims, per["frac"], {"units": "1"}),
            "elapsed": (dims, per["t"], {"units": "s", "long_name": "time from run start"}),
            "best_so_far": (dims, best, {"units": "1", "long_name": "best objective so far"}),
            "val_metric": ((*dims, "epoch"), curves["val_metric"], {"units": "1"}),
            "val_loss": ((*dims, "epoch"), curves["val_loss"], {"units": "1"}),
            "wall_time": (("policy", "seed"), wall, {"units": "s", "long_name": "search time"}),
            "run_dir": (("policy", "seed"), paths),
        },
        coords={
            "policy": np.array(policies, dtype=object),
            "seed": np.array(seeds, dtype=np.int64),
            "evaluation": np.arange(1, n_eval + 1, dtype=np.int32),
            "epoch": np.arange(1, n_epoch + 1, dtype=np.int32),
        },
    )


def _topk_vars(
    cells: dict[tuple[str, int], _Run], policies: list[str], seeds: list[int]
) -> xr.Dataset:
    topks = {key: r.topk for key, r in cells.items() if r.topk is not None}
    n_rank = max(t.sizes["rank"] for t in topks.values())
    n_ep = max(t.sizes["epoch"] for t in topks.values())
    base = (len(policies), len(seeds), n_rank)
    out = {
        "topk_candidate": np.full(base, np.nan),
        "topk_target": np.full(base, np.nan),
        "topk_speedup": np.full(base, np.nan),
        "topk_time_to_target": np.full((*base, len(INITS)), np.nan),
        "topk_final_metric": np.full((*base, len(INITS)), np.nan),
        "topk_val_metric": np.full((*base, len(INITS), n_ep), np.nan),
        "topk_elapsed": np.full((*base, len(INITS), n_ep), np.nan),
    }
    sources = {
        "topk_candidate": "candidate",
        "topk_target": "target",
        "topk_speedup": "speedup",
        "topk_time_to_target": "time_to_target",
        "topk_final_metric": "final_metric",
        "topk_val_metric": "val_metric",
        "topk_elapsed": "elapsed",
    }
    for (label, seed), topk in topks.items():
        i, j = policies.index(label), seeds.index(seed)
        t = topk.reindex(init=[str(i) for i in INITS])
        for name, source in sources.items():
            values = t[source].values
            index: tuple[int | slice, ...] = (i, j, *(slice(0, s) for s in values.shape))
            out[name][index] = values
    dims = ("policy", "seed", "rank")
    data = {
        name: ((*dims, "init", "topk_epoch")[: values.ndim], values) for name, values in out.items()
    }
    return xr.Dataset(
        data,
        coords={
            "rank": np.arange(n_rank, dtype=np.int32),
            "init": np.array([str(i) for i in INITS], dtype=object),
            "topk_epoch": np.arange(1, n_ep + 1, dtype=np.int32),
        },
    )


def write_comparison(ds: xr.Dataset, out_dir: str | Path) -> Path:
    """Write a gathered dataset to ``<out_dir>/comparison.nc``."""

    path = refuse_overwrite(Path(out_dir) / COMPARISON_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(ds, path)
    return path
