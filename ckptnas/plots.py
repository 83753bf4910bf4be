"""Figures of a comparison and of one run, written as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` objects (the Agg canvas), never through
``pyplot``, so plotting needs no display and leaves no global state behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ckptnas.compare_stats import MannWhitney, speedup_summary
from ckptnas.lineage import CandidateRecord

_DPI = 90
_COLORS = {"none": "tab:gray", "lcp": "tab:blue", "lcp+freeze": "tab:orange"}
_INIT_COLORS = {"scratch": "tab:gray", "checkpoint": "tab:green"}


def _color(policy: str, k: int) -> str:
    return _COLORS.get(policy, f"C{k + 3}")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def _objectives(ds: xr.Dataset, policy: str) -> np.ndarray:
    v = np.asarray(ds.objective.sel(policy=policy).values, dtype=float).ravel()
    finite: np.ndarray = v[np.isfinite(v)]
    return finite


def objective_distributions(ds: xr.Dataset, tests: Sequence[MannWhitney], path: str | Path) -> Path:
    """Box and strip plot of candidate objectives per policy, with each test's p and effect."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    policies = [str(p) for p in ds.policy.values]
    rng = np.random.default_rng(0)
    data = [_objectives(ds, p) for p in policies]
    ax.boxplot(data, showfliers=False, widths=0.5)
    ax.set_xticks(range(1, len(policies) + 1), policies)
    for k, (policy, values) in enumerate(zip(policies, data, strict=True)):
        jitter = rng.uniform(-0.18, 0.18, len(values))
        ax.scatter(k + 1 + jitter, values, s=9, alpha=0.5, color=_color(policy, k))
    notes = [
        f"{t.treatment} > {t.control}: p = {t.p_value:.2g}, CLES = {t.cles:.2f}, "
        f"r = {t.rank_biserial:.2f} (n = {t.n_treatment}, {t.n_control})"
        for t in tests
    ]
    metric = ds.attrs.get("metric", "metric")
    ax.set_ylabel(f"candidate objective (validation {metric})")
    ax.set_title(
        f"Candidate objectives per policy, {ds.attrs.get('dataset', '')}, "
        f"{ds.sizes['seed']} seeds pooled\none-sided Mann-Whitney U:\n" + "\n".join(notes),
        fontsize=9,
    )
    _clip_low(ax, np.concatenate(data) if data else np.array([]))
    return _save(fig, path)


def _clip_low(ax: Axes, values: np.ndarray) -> None:
    """Keep a few diverged candidates from squashing the plot; they stay counted in the test."""
    if values.size > 4:
        low = np.percentile(values, 2)
        span = np.max(values) - low
        if math.isfinite(span) and span > 0:
            ax.set_ylim(low - 0.1 * span, np.max(values) + 0.05 * span)


def best_so_far(ds: xr.Dataset, path: str | Path) -> Path:
    """Best objective so far against candidates evaluated and against wall time, per policy."""
    fig = Figure(figsize=(10, 4))
    by_count, by_time = fig.subplots(1, 2, sharey=True)
    for k, policy in enumerate(str(p) for p in ds.policy.values):
        sub = ds.sel(policy=policy)
        color = _color(policy, k)
        for s in sub.seed.values:
            run = sub.sel(seed=s)
            by_count.plot(run.evaluation, run.best_so_far, color=color, alpha=0.25, lw=0.8)
            by_time.plot(run.elapsed, run.best_so_far, color=color, alpha=0.25, lw=0.8)
        mean = sub.best_so_far.mean("seed")
        by_count.plot(sub.evaluation, mean, color=color, lw=2, label=f"{policy} (mean)")
        by_time.step(
            sub.elapsed.median("seed"), mean, color=color, lw=2, where="post", label=policy
        )
    metric = ds.attrs.get("metric", "metric")
    by_count.set_xlabel("candidates evaluated")
    by_count.set_ylabel(f"best validation {metric} so far")
    by_time.set_xlabel("wall time since the search started (s; mean curve at median time)")
    by_count.legend(fontsize=8)
    fig.suptitle(
        f"Best-so-far objective vs candidates and vs wall time ({ds.attrs.get('dataset', '')}; "
        "thin lines: single seeds)",
        fontsize=10,
    )
    _clip_low(by_count, np.asarray(ds.best_so_far.values, dtype=float).ravel())
    return _save(fig, path)


def validation_curves(ds: xr.Dataset, path: str | Path) -> Path:
    """Mean validation metric per epoch of warm-started and scratch candidates, per policy."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    epochs = ds.epoch.values
    for k, policy in enumerate(str(p) for p in ds.policy.values):
        sub = ds.sel(policy=policy)
        for warm, style in ((1.0, "-"), (0.0, "--")):
            curves = sub.val_metric.where(sub.warm == warm)
            stacked = np.asarray(curves.values, dtype=float).reshape(-1, len(epochs))
            stacked = stacked[np.isfinite(stacked).all(axis=1)]
            if not len(stacked):
                continue
            mean = stacked.mean(0)
            sem = stacked.std(0) / np.sqrt(len(stacked))
            label = f"{policy}, {'warm' if warm else 'scratch'} (n = {len(stacked)})"
            ax.errorbar(
                epochs,
                mean,
                sem,
                ls=style,
                marker="o",
                capsize=3,
                label=label,
                color=_color(policy, k),
            )
    metric = ds.attrs.get("metric", "metric")
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch of candidate training")
    ax.set_ylabel(f"mean validation {metric} (± s.e.m.)")
    ax.set_title("Validation curves of warm-started vs scratch candidates", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def topk_speedups(ds: xr.Dataset, path: str | Path) -> Path:
    """Top-K full training: validation curves by init per policy, and the speed-ups."""
    policies = [str(p) for p in ds.policy.values if speedup_summary(ds, str(p)) is not None]
    fig = Figure(figsize=(4.2 * (len(policies) + 1), 4))
    axes = fig.subplots(1, len(policies) + 1, squeeze=False)[0]
    metric = ds.attrs.get("metric", "metric")
    for ax, policy in zip(axes[:-1], policies, strict=True):
        sub = ds.sel(policy=policy)
        for init in ("scratch", "checkpoint"):
            v = np.asarray(sub.topk_val_metric.sel(init=init).values, dtype=float)
            t = np.asarray(sub.topk_elapsed.sel(init=init).values, dtype=float)
            v, t = v.reshape(-1, v.shape[-1]), t.reshape(-1, t.shape[-1])
            for row in range(len(v)):
                ax.plot(t[row], v[row], color=_INIT_COLORS[init], alpha=0.35, lw=0.8)
            ax.plot([], [], color=_INIT_COLORS[init], label=f"{init} init")
        ax.set_title(f"Full training, top-K of {policy} (a line per run)", fontsize=9)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(f"validation {metric}")
        ax.legend(fontsize=8)
        _clip_low(ax, np.asarray(sub.topk_val_metric.values, dtype=float).ravel())
    speed_ax = axes[-1]
    for k, policy in enumerate(policies):
        s = np.asarray(ds.topk_speedup.sel(policy=policy).values, dtype=float).ravel()
        s = s[np.isfinite(s)]
        jitter = np.random.default_rng(k).uniform(-0.12, 0.12, len(s))
        speed_ax.scatter(k + jitter, s, s=14, color=_color(policy, k), alpha=0.7)
        summary = speedup_summary(ds, policy)
        assert summary is not None
        speed_ax.errorbar(
            k + 0.25,
            summary.median,
            [[summary.median - summary.q1], [summary.q3 - summary.median]],
            fmt="D",
            color="black",
            capsize=4,
        )
        speed_ax.annotate(
            f"median {summary.median:.2f}x\n{summary.n_reached}/{summary.n} reached",
            (k + 0.28, summary.median),
            fontsize=8,
        )
    speed_ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    speed_ax.axhline(1.4, color="tab:red", lw=0.8, ls="--", label="published 1.4x")
    speed_ax.set_xticks(range(len(policies)), policies)
    speed_ax.set_xlim(-0.5, len(policies) - 0.5 + 0.4)
    speed_ax.set_ylabel("speed-up to target (scratch / checkpoint time)")
    speed_ax.set_title("Time-to-target speed-up per candidate (0: missed)", fontsize=9)
    speed_ax.legend(fontsize=8)
    return _save(fig, path)


def run_objectives(results: xr.Dataset, path: str | Path) -> Path:
    """One run: each candidate's objective in submission order, warm vs scratch, best so far."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ok = results.status.values == "ok"
    ids = results.candidate.values[ok]
    obj = results.objective.values[ok]
    warm = results.parent.values[ok] >= 0
    ax.scatter(ids[warm], obj[warm], s=14, color="tab:orange", label="warm-started")
    ax.scatter(ids[~warm], obj[~warm], s=14, color="tab:gray", label="from scratch")
    ax.step(ids, np.fmax.accumulate(obj), where="post", color="black", lw=1, label="best so far")
    metric = results.attrs.get("metric", "metric")
    ax.set_xlabel("candidate id (submission order)")
    ax.set_ylabel(f"objective (validation {metric})")
    ax.set_title(
        f"Candidate objectives of one run ({results.attrs.get('dataset', '')}, "
        f"policy {results.attrs.get('policy', '')})",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    _clip_low(ax, obj)
    return _save(fig, path)


def run_curves(results: xr.Dataset, path: str | Path) -> Path:
    """One run: mean validation curve of warm-started and of scratch candidates."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ok = results.status.values == "ok"
    warm = results.parent.values >= 0
    for mask, label, color in ((warm, "warm", "tab:orange"), (~warm, "scratch", "tab:gray")):
        v = np.asarray(results.val_metric.values[ok & mask], dtype=float)
        if not len(v):
            continue
        ax.errorbar(
            results.epoch.values,
            np.nanmean(v, 0),
            np.nanstd(v, 0) / np.sqrt(len(v)),
            marker="o",
            capsize=3,
            color=color,
            label=f"{label} (n = {len(v)})",
        )
    ax.set_xticks(results.epoch.values)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"mean validation {results.attrs.get('metric', 'metric')} (± s.e.m.)")
    ax.set_title("Validation curves: warm-started vs scratch candidates", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _tree_layout(records: Sequence[CandidateRecord]) -> dict[int, tuple[float, float]]:
    """Tidy positions: x = generation, y = leaves in order, a parent at its children's mean."""
    children: dict[int | None, list[int]] = {}
    for r in records:
        children.setdefault(r.parent, []).append(r.id)
    pos: dict[int, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(node: int, depth: int) -> float:
        kids = children.get(node, [])
        if kids:
            y = float(np.mean([place(k, depth + 1) for k in kids]))
        else:
            y, next_leaf[0] = next_leaf[0], next_leaf[0] + 1
        pos[node] = (float(depth), y)
        return y

    for root in sorted(children.get(None, [])):
        place(root, 0)
    return pos


def lineage_tree(records: Sequence[CandidateRecord], path: str | Path, title: str = "") -> Path:
    """The inheritance forest of a run: an edge from each donor to each candidate it seeded."""
    import sys

    sys.setrecursionlimit(max(1000, 10 * len(records)))
    pos = _tree_layout(records)
    n_leaves = max((y for _, y in pos.values()), default=0) + 1
    fig = Figure(figsize=(8, max(3.0, min(24.0, 0.18 * n_leaves))))
    ax = fig.add_subplot()
    for r in records:
        if r.parent is not None and r.parent in pos:
            (x0, y0), (x1, y1) = pos[r.parent], pos[r.id]
            ax.plot([x0, x0, x1], [y0, y1, y1], color="gray", lw=0.6)
    ok = [r for r in records if r.id in pos and math.isfinite(r.objective)]
    failed = [r for r in records if r.id in pos and not math.isfinite(r.objective)]
    points = ax.scatter(
        [pos[r.id][0] for r in ok],
        [pos[r.id][1] for r in ok],
        c=[r.objective for r in ok],
        cmap="viridis",
        s=28,
        zorder=3,
    )
    ax.scatter(
        [pos[r.id][0] for r in failed],
        [pos[r.id][1] for r in failed],
        marker="x",
        color="red",
        zorder=3,
        label="failed",
    )
    if len(records) <= 120:
        for r in records:
            x, y = pos[r.id]
            ax.annotate(str(r.id), (x, y), xytext=(4, 2), textcoords="offset points", fontsize=6)
    fig.colorbar(points, ax=ax, label="objective")
    ax.set_xlabel("generation (0: trained from scratch)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_title(
        title or "Lineage tree: each candidate under the donor it inherited from", fontsize=10
    )
    return _save(fig, path)


def topk_run(topk: xr.Dataset, path: str | Path) -> Path:
    """One run's full training: validation metric against wall time per candidate and init."""
    n = topk.sizes["rank"]
    cols = min(n, 3)
    rows = math.ceil(n / cols) if n else 1
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, max(cols, 1), squeeze=False)).ravel()
    metric = topk.attrs.get("metric", "metric")
    for rank in range(n):
        ax = axes[rank]
        row = topk.isel(rank=rank)
        for init in row.init.values:
            ax.plot(
                row.elapsed.sel(init=init),
                row.val_metric.sel(init=init),
                color=_INIT_COLORS.get(str(init), "black"),
                label=f"{init} init",
            )
        target = float(row.target)
        if math.isfinite(target):
            ax.axhline(target, color="tab:red", ls=":", lw=0.8, label="target")
        speed = float(row.speedup)
        ax.set_title(f"candidate {int(row.candidate)}: speed-up {speed:.2f}x", fontsize=9)
        ax.set_xlabel("wall time (s)", fontsize=8)
        ax.set_ylabel(f"validation {metric}", fontsize=8)
        finite = np.asarray(row.val_metric.values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            low = np.percentile(finite, 5)
            ax.set_ylim(low - 0.05 * (finite.max() - low), finite.max() + 0.02)
    for ax in axes[n:]:
        ax.set_visible(False)
    if n:
        axes[0].legend(fontsize=7)
    fig.suptitle(
        "Full training of the top-K candidates: checkpoint vs scratch init", fontsize=10, y=1.02
    )
    return _save(fig, path)
