"""The statistics of a comparison: U tests between policies, top-K speed-ups, the table.

Everything here reads a dataset gathered by :func:`ckptnas.analysis.gather`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import mannwhitneyu

from ckptnas.errors import ComparisonError
from ckptnas.storage import time_to_target


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


def policy_objectives(ds: xr.Dataset, policy: str, seed: int | None = None) -> np.ndarray:
    """The finite objectives of one policy's candidates, of one seed or of every seed."""
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
        From :func:`ckptnas.compare.gather`.
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
    x, y = policy_objectives(ds, treatment, seed), policy_objectives(ds, control, seed)
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
        From :func:`ckptnas.compare.gather`.
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
        obj = policy_objectives(ds, str(policy))
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
