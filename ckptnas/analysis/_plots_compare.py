"""Figures of a comparison of runs: objectives, best so far, validation curves, speed-ups."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ckptnas.analysis._figures import INIT_COLORS, clip_low, policy_color, save
from ckptnas.analysis._stats import MannWhitney, policy_objectives, speedup_summary
from ckptnas.storage import INITS


def objective_distributions(ds: xr.Dataset, tests: Sequence[MannWhitney], path: str | Path) -> Path:
    """Box and strip plot of candidate objectives per policy, with each test's p and effect."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    policies = [str(p) for p in ds.policy.values]
    rng = np.random.default_rng(0)
    data = [policy_objectives(ds, p) for p in policies]
    ax.boxplot(data, showfliers=False, widths=0.5)
    ax.set_xticks(range(1, len(policies) + 1), policies)
    for k, (policy, values) in enumerate(zip(policies, data, strict=True)):
        jitter = rng.uniform(-0.18, 0.18, len(values))
        ax.scatter(k + 1 + jitter, values, s=9, alpha=0.5, color=policy_color(policy, k))
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
    clip_low(ax, np.concatenate(data) if data else np.array([]))
    return save(fig, path)


def best_so_far(ds: xr.Dataset, path: str | Path) -> Path:
    """Best objective so far against candidates evaluated and against wall time, per policy."""
    fig = Figure(figsize=(10, 4))
    by_count, by_time = fig.subplots(1, 2, sharey=True)
    for k, policy in enumerate(str(p) for p in ds.policy.values):
        sub = ds.sel(policy=policy)
        color = policy_color(policy, k)
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
    clip_low(by_count, np.asarray(ds.best_so_far.values, dtype=float).ravel())
    return save(fig, path)


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
                color=policy_color(policy, k),
            )
    metric = ds.attrs.get("metric", "metric")
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch of candidate training")
    ax.set_ylabel(f"mean validation {metric} (± s.e.m.)")
    ax.set_title("Validation curves of warm-started vs scratch candidates", fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, path)


def topk_speedups(ds: xr.Dataset, path: str | Path) -> Path:
    """Top-K full training: validation curves by init per policy, and the speed-ups."""
    policies = [str(p) for p in ds.policy.values if speedup_summary(ds, str(p)) is not None]
    fig = Figure(figsize=(4.2 * (len(policies) + 1), 4))
    axes = fig.subplots(1, len(policies) + 1, squeeze=False)[0]
    metric = ds.attrs.get("metric", "metric")
    for ax, policy in zip(axes[:-1], policies, strict=True):
        sub = ds.sel(policy=policy)
        for init in INITS:
            v = np.asarray(sub.topk_val_metric.sel(init=init).values, dtype=float)
            t = np.asarray(sub.topk_elapsed.sel(init=init).values, dtype=float)
            v, t = v.reshape(-1, v.shape[-1]), t.reshape(-1, t.shape[-1])
            for row in range(len(v)):
                ax.plot(t[row], v[row], color=INIT_COLORS[init], alpha=0.35, lw=0.8)
            ax.plot([], [], color=INIT_COLORS[init], label=f"{init} init")
        ax.set_title(f"Full training, top-K of {policy} (a line per run)", fontsize=9)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(f"validation {metric}")
        ax.legend(fontsize=8)
        clip_low(ax, np.asarray(sub.topk_val_metric.values, dtype=float).ravel())
    speed_ax = axes[-1]
    for k, policy in enumerate(policies):
        s = np.asarray(ds.topk_speedup.sel(policy=policy).values, dtype=float).ravel()
        s = s[np.isfinite(s)]
        jitter = np.random.default_rng(k).uniform(-0.12, 0.12, len(s))
        speed_ax.scatter(k + jitter, s, s=14, color=policy_color(policy, k), alpha=0.7)
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
    return save(fig, path)
