"""Comparing searches: runs gathered into one dataset over ``policy`` and ``seed``, and tested.

:func:`gather` reads the ``results.nc`` (and, where present, ``topk.nc``) of several run
directories into one :class:`xarray.Dataset` with dims ``policy`` (``none``, ``lcp``,
``lcp+freeze``, ...), ``seed``, ``evaluation`` (candidates in the order they finished) and
``epoch``; full-training results add ``rank`` and ``init``. :func:`mann_whitney` tests whether
one policy's candidate objectives are stochastically greater than another's, pooled over seeds;
:func:`speedup_summary` summarises the top-K time-to-target speed-ups.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import mannwhitneyu

from ckptnas.errors import ComparisonError
from ckptnas.results import load_results, package_version
from ckptnas.topk_registry import INITS
from ckptnas.topk_results import TOPK_FILE, load_topk, time_to_target

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
    topk = load_topk(path) if (path / TOPK_FILE).is_file() else None
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
        ok = r.status.values[order] == "ok"
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
        t = topk.reindex(init=list(INITS))
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
            "init": np.array(INITS, dtype=object),
            "topk_epoch": np.arange(1, n_ep + 1, dtype=np.int32),
        },
    )


@dataclass(frozen=True)
class MannWhitney:
    """A one-sided Mann-Whitney U test: are ``treatment``'s objectives greater than ``control``'s?

    Attributes
    ----------
    u : float
        U statistic of the treatment sample.
    p_value : float
        One-sided (alternative: treatment greater).
    cles : float
        Common-language effect size ``U / (n_t n_c)``: the probability that a random treatment
        candidate beats a random control candidate (ties count half).
    rank_biserial : float
        ``2 cles - 1``, in [-1, 1]; 0 means no effect.
    """

    treatment: str
    control: str
    n_treatment: int
    n_control: int
    median_treatment: float
    median_control: float
    u: float
    p_value: float
    cles: float
    rank_biserial: float


def _objectives(ds: xr.Dataset, policy: str, seed: int | None) -> np.ndarray:
    values = ds.objective.sel(policy=policy)
    if seed is not None:
        values = values.sel(seed=seed)
    flat = np.asarray(values.values, dtype=float).ravel()
    finite: np.ndarray = flat[np.isfinite(flat)]
    return finite


def mann_whitney(
    ds: xr.Dataset, treatment: str, control: str = "none", seed: int | None = None
) -> MannWhitney:
    """Test whether one policy's candidate objectives are greater than another's.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`gather`.
    treatment, control : str
        Policy labels.
    seed : int, optional
        Test one seed only; by default every seed's candidates are pooled.

    Returns
    -------
    MannWhitney

    Raises
    ------
    ComparisonError
        If a policy is absent or has no successful candidate.
    """
    for policy in (treatment, control):
        if policy not in ds.policy.values:
            raise ComparisonError(f"no runs with policy {policy!r}")
    x, y = _objectives(ds, treatment, seed), _objectives(ds, control, seed)
    if not len(x) or not len(y):
        raise ComparisonError(f"policy {treatment!r} or {control!r} has no successful candidate")
    test = mannwhitneyu(x, y, alternative="greater")
    cles = float(test.statistic) / (len(x) * len(y))
    return MannWhitney(
        treatment,
        control,
        len(x),
        len(y),
        float(np.median(x)),
        float(np.median(y)),
        float(test.statistic),
        float(test.pvalue),
        cles,
        2 * cles - 1,
    )


@dataclass(frozen=True)
class SpeedupSummary:
    """Top-K time-to-target speed-ups of one policy, over every candidate and seed.

    ``median``, ``q1`` and ``q3`` count a checkpoint run that never reached the target as a
    speed-up of 0; ``n_reached`` says how many did reach it.
    """

    policy: str
    n: int
    n_reached: int
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    median_time_scratch: float
    median_time_checkpoint: float


def _times_to_target(ds: xr.Dataset, policy: str, tolerance: float) -> np.ndarray:
    """Times to target of every (seed, rank, init), the target lowered by ``tolerance``."""
    sub = ds.sel(policy=policy)
    if tolerance == 0:
        return np.asarray(sub.topk_time_to_target.values, dtype=float)
    metric = np.asarray(sub.topk_val_metric.values, dtype=float)
    elapsed = np.asarray(sub.topk_elapsed.values, dtype=float)
    target = np.asarray(sub.topk_target.values, dtype=float) - tolerance
    out = np.full(metric.shape[:-1], np.nan)
    for index in np.ndindex(*out.shape):
        if np.isfinite(elapsed[index]).any():
            out[index] = time_to_target(metric[index], elapsed[index], float(target[index[:-1]]))[0]
    return out


def speedup_summary(ds: xr.Dataset, policy: str, tolerance: float = 0.0) -> SpeedupSummary | None:
    """Summarise the top-K speed-ups of a policy; ``None`` when it has no full training.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`gather`.
    policy : str
    tolerance : float
        Lower each target by this much (in metric units) before timing both inits; 0 is the
        definition of ``topk.nc``: reach the scratch run's final metric.
    """
    if "topk_speedup" not in ds or policy not in ds.policy.values:
        return None
    times = _times_to_target(ds, policy, tolerance)
    scratch, warm = times[..., 0].ravel(), times[..., 1].ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        s = scratch / warm
    s = s[np.isfinite(s)]
    if not len(s):
        return None
    q1, median, q3 = np.percentile(s, [25, 50, 75])
    return SpeedupSummary(
        policy,
        len(s),
        int(np.sum(s > 0)),
        float(median),
        float(q1),
        float(q3),
        float(s.min()),
        float(s.max()),
        float(np.nanmedian(scratch)) if np.isfinite(scratch).any() else math.nan,
        float(np.median(warm[~np.isnan(warm)])) if (~np.isnan(warm)).any() else math.nan,
    )


def policy_table(ds: xr.Dataset, control: str = "none") -> list[dict[str, Any]]:
    """One row per policy: sizes, objectives, search time and the test against ``control``."""
    rows = []
    for policy in ds.policy.values:
        sub = ds.sel(policy=policy)
        obj = _objectives(ds, str(policy), None)
        row: dict[str, Any] = {
            "policy": str(policy),
            "runs": int(np.isfinite(sub.wall_time.values).sum()),
            "candidates": len(obj),
            "warm_share": float(np.nanmean(sub.warm.values)),
            "median_objective": float(np.median(obj)) if len(obj) else math.nan,
            "mean_best": float(np.nanmean(sub.objective.max("evaluation").values)),
            "mean_wall_time": float(np.nanmean(sub.wall_time.values)),
        }
        if control in ds.policy.values and policy != control:
            test = mann_whitney(ds, str(policy), control)
            row |= {"p_value": test.p_value, "cles": test.cles, "rank_biserial": test.rank_biserial}
            row["p_per_seed"] = [
                mann_whitney(ds, str(policy), control, int(s)).p_value for s in ds.seed.values
            ]
        rows.append(row)
    return rows


def format_table(
    ds: xr.Dataset, control: str = "none", tolerances: Sequence[float] = (0.0, 0.01)
) -> str:
    """The comparison as plain-text tables (policies, then top-K speed-ups).

    ``tolerances`` lists the target reductions of the speed-up rows; 0 is the primary one
    (reach the scratch run's final metric), others are secondary readings of the same curves.
    """
    metric = ds.attrs.get("metric", "metric")
    lines = [
        f"dataset {ds.attrs.get('dataset', '?')}, objective: validation {metric}; "
        f"one-sided Mann-Whitney U against {control!r}, candidates pooled over seeds",
        f"{'policy':<12} {'runs':>4} {'cands':>5} {'warm':>5} {'median':>8} {'best':>8} "
        f"{'time/s':>7} {'p':>9} {'CLES':>5} {'r_rb':>6}  p per seed",
    ]
    for row in policy_table(ds, control):
        tail = "        -     -      -"
        if "p_value" in row:
            per_seed = ", ".join(f"{p:.2g}" for p in row["p_per_seed"])
            tail = (
                f"{row['p_value']:>9.2g} {row['cles']:>5.2f} {row['rank_biserial']:>6.2f}  "
                f"{per_seed}"
            )
        lines.append(
            f"{row['policy']:<12} {row['runs']:>4} {row['candidates']:>5} "
            f"{row['warm_share']:>5.0%} {row['median_objective']:>8.4f} {row['mean_best']:>8.4f} "
            f"{row['mean_wall_time']:>7.1f} {tail}"
        )
    lines += _speedup_lines(ds, metric, tolerances)
    return "\n".join(lines)


def _speedup_lines(ds: xr.Dataset, metric: str, tolerances: Sequence[float]) -> list[str]:
    rows = [
        (tol, s)
        for tol in tolerances
        for s in (speedup_summary(ds, str(p), tol) for p in ds.policy.values)
        if s is not None
    ]
    if not rows:
        return []
    lines = [
        "",
        "top-K full training, checkpoint vs scratch init; target: the scratch run's final "
        f"validation {metric} (minus tol); speed-up = scratch / checkpoint time to target "
        "(miss = 0)",
        f"{'policy':<12} {'tol':>5} {'runs':>4} {'reached':>7} {'median':>7} {'IQR':>13} "
        f"{'min':>5} {'max':>5} {'t_scratch':>9} {'t_ckpt':>7}",
    ]
    for tol, s in rows:
        lines.append(
            f"{s.policy:<12} {tol:>5.3g} {s.n:>4} {s.n_reached:>4}/{s.n:<2} {s.median:>7.2f} "
            f"{f'{s.q1:.2f}-{s.q3:.2f}':>13} {s.minimum:>5.2f} {s.maximum:>5.2f} "
            f"{s.median_time_scratch:>8.1f}s {s.median_time_checkpoint:>6.1f}s"
        )
    return lines


def write_comparison(ds: xr.Dataset, out_dir: str | Path) -> Path:
    """Write a gathered dataset to ``<out_dir>/comparison.nc``."""
    from ckptnas.results import write_dataset

    path = Path(out_dir) / COMPARISON_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(ds, path)
    return path
