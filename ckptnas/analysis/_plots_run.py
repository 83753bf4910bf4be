"""Figures of one run: its objectives, validation curves, lineage tree and full training."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ckptnas.analysis._figures import INIT_COLORS, clip_low, save
from ckptnas.analysis._lineage_stats import Lineage
from ckptnas.storage import CandidateRecord, CandidateStatus, Init


def run_objectives(results: xr.Dataset, path: str | Path) -> Path:
    """One run: each candidate's objective in submission order, warm vs scratch, best so far."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ok = results.status.values == CandidateStatus.OK
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
    clip_low(ax, obj)
    return save(fig, path)


def run_curves(results: xr.Dataset, path: str | Path) -> Path:
    """One run: mean validation curve of warm-started and of scratch candidates."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ok = results.status.values == CandidateStatus.OK
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
    return save(fig, path)


def lineage_tree(records: Sequence[CandidateRecord], path: str | Path, title: str = "") -> Path:
    """The inheritance forest of a run: an edge from each donor to each candidate it seeded."""
    pos = Lineage(records).layout()
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
    return save(fig, path)


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
            # topk.nc files written before test splits have no test_metric.
            test = float(row.test_metric.sel(init=init)) if "test_metric" in row else math.nan
            held_out = f", held-out test {test:.3f}" if math.isfinite(test) else ""
            ax.plot(
                row.elapsed.sel(init=init),
                row.val_metric.sel(init=init),
                color=INIT_COLORS.get(Init(str(init)), "black"),
                label=f"{init} init{held_out}",
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
    for ax in axes[:n]:  # each: every candidate has its own held-out scores
        ax.legend(fontsize=6)
    fig.suptitle(
        "Full training of the top-K candidates: checkpoint vs scratch init", fontsize=10, y=1.02
    )
    return save(fig, path)
