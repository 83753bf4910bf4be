"""Warm starts across spaces: the transfer policies on the dense, conv2d and cell spaces.

For each space (the dense space on the synthetic Combo-like data; conv2d and cell on
scikit-learn's digits as 1x8x8 images) this runs the same regularized-evolution search once per
policy (none, lcp, aligned, widen) and seed on one shared LocalCluster, then prints and writes
(``<out>/table.md``) per space and policy: the share of warm-started candidates, the mean
fraction of parameters transferred, the first-epoch validation metric of warm-started
candidates against the candidates of the ``none`` search, the best objective, and one-sided
Mann-Whitney U p-values (per seed) that the policy's candidate objectives exceed those of
``none``. Finished runs are resumed, so an interrupted comparison continues where it stopped.

    python experiments/compare_spaces.py --out /tmp/compare-spaces     # ~15 min on 2 cores
    python experiments/compare_spaces.py --quick --out /tmp/q          # a miniature
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from distributed import Client, LocalCluster
from scipy.stats import mannwhitneyu

from ckptnas import LineageRegistry, load_results
from ckptnas.config import config_from_dict
from ckptnas.runtime import Experiment
from ckptnas.search import Planner
from ckptnas.space import space_from_dict
from ckptnas.storage import CandidateStatus

POLICIES = ("none", "lcp", "aligned", "widen")
SEEDS = (0, 1, 2)

#: What every search shares: the strategy, the budget, two epochs per candidate.
COMMON: dict[str, Any] = {
    "experiment": {"max_candidates": 30, "max_in_flight": 4, "flush_interval": 2.0},
    "search": {"population_size": 6, "sample_size": 3, "mutation_bias": 1.0},
    "training": {"epochs": 2, "batch_size": 64},
}

SPACES: dict[str, dict[str, Any]] = {
    "dense": {
        "data": {"kind": "synthetic_combo", "n_samples": 3000},
        "space": {"num_nodes": 4, "units": [16, 32, 64], "shared_inputs": [["drug1", "drug2"]]},
    },
    "conv2d": {
        "data": {"kind": "sklearn", "name": "digits_images"},
        "space": {"kind": "conv2d", "options": {"filters": [8, 16], "units": [32, 64]}},
    },
    "cell": {
        "data": {"kind": "sklearn", "name": "digits_images"},
        "space": {"kind": "cell", "options": {"channels": 8, "num_cells": 2}},
    },
}


def run_all(out: Path, client: Client, budget: int) -> None:
    """Every (space, policy, seed) search; one already finished is only read back."""
    for space, tables in SPACES.items():
        for seed in SEEDS:
            for policy in POLICIES:
                values = {**COMMON, **tables, "transfer": {"policy": policy}}
                values["experiment"] = {
                    **COMMON["experiment"],
                    "seed": seed,
                    "max_candidates": budget,
                }
                config = config_from_dict(values)
                run_dir = out / space / policy / f"seed{seed}"
                resume = (run_dir / "lineage.sqlite").exists()
                tic = time.perf_counter()
                Experiment(config, run_dir, progress=False, resume=resume).run(client)
                print(
                    f"{space} {policy} seed {seed}: {time.perf_counter() - tic:.0f} s", flush=True
                )


def run_numbers(ds: xr.Dataset) -> dict[str, float]:
    """One run's headline numbers."""
    ok = ds.status == "ok"
    warm = ok & (ds.parent >= 0)
    first = ds.val_metric.isel(epoch=0)
    return {
        "warm_share": float(warm.sum() / ok.sum()),
        "frac_params": float(ds.frac_params_transferred.where(ok).mean()),
        "first_warm": float(first.where(warm).mean()) if warm.any() else float("nan"),
        "first_all": float(first.where(ok).mean()),
        "best": float(ds.objective.max()),
    }


def table(out: Path) -> str:
    """The comparison as a Markdown table, one row per space and policy."""
    lines = [
        "| space | policy | warm share | mean frac. params transferred | first-epoch metric, "
        "warm (none: all) | best objective | Mann-Whitney U p vs none, per seed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for space in SPACES:
        runs = {(p, s): load_results(out / space / p / f"seed{s}") for p in POLICIES for s in SEEDS}
        for policy in POLICIES:
            numbers = [run_numbers(runs[policy, s]) for s in SEEDS]
            mean = {k: float(np.mean([n[k] for n in numbers])) for k in numbers[0]}
            first = mean["first_all"] if policy == "none" else mean["first_warm"]
            pvalues = "-"
            if policy != "none":
                pvalues = ", ".join(
                    f"{_p_value(runs[policy, s], runs['none', s]):.3f}" for s in SEEDS
                )
            lines.append(
                f"| {space} | {policy} | {mean['warm_share']:.2f} | {mean['frac_params']:.2f} "
                f"| {first:.3f} | {mean['best']:.3f} | {pvalues} |"
            )
    return "\n".join(lines)


def per_run_fractions(out: Path) -> str:
    """Mean fraction of parameters transferred per run, for each policy that transfers."""
    lines = []
    for space in SPACES:
        for seed in SEEDS:
            fractions = [
                f"{p} {_fraction(out / space / p / f'seed{seed}'):.3f}" for p in POLICIES[1:]
            ]
            lines.append(f"{space} seed {seed}: {', '.join(fractions)}")
    return "\n".join(lines)


def _fraction(run_dir: Path) -> float:
    return run_numbers(load_results(run_dir))["frac_params"]


def paired_fractions(run_dir: Path) -> tuple[float, float, int]:
    """lcp and aligned planned for the same candidates, from the same donors.

    Replays a run: each candidate, in the order they were submitted, is planned by both
    policies from the candidates that had finished before it was submitted. Returns the mean
    fraction of parameters each would transfer, and how many candidates aligned gave fewer.
    """
    with LineageRegistry(run_dir, readonly=True) as registry:
        space = space_from_dict(registry.recorded_space())
        records = sorted(registry, key=lambda r: r.submit_time)
    finished = sorted(
        (r for r in records if r.status == CandidateStatus.OK), key=lambda r: r.end_time
    )
    planners = [Planner("lcp", space), Planner("aligned", space)]
    fractions: list[tuple[float, float]] = []
    added = 0
    for record in records:
        while added < len(finished) and finished[added].end_time < record.submit_time:
            donor = finished[added]
            for planner in planners:
                planner.add(donor.id, donor.arch, donor.objective)
            added += 1
        lcp, aligned = (p.plan(record.arch).n_params / record.n_params for p in planners)
        fractions.append((lcp, aligned))
    lcp_mean, aligned_mean = np.mean(fractions, axis=0)
    fewer = sum(a < b for b, a in fractions)
    return float(lcp_mean), float(aligned_mean), fewer


def paired_table(out: Path) -> str:
    """:func:`paired_fractions` of every lcp and aligned run, as a Markdown table."""
    lines = [
        "| space | run | seed | lcp | aligned | candidates where aligned < lcp |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for space in SPACES:
        for policy in ("lcp", "aligned"):
            for seed in SEEDS:
                lcp, aligned, fewer = paired_fractions(out / space / policy / f"seed{seed}")
                lines.append(
                    f"| {space} | {policy} | {seed} | {lcp:.3f} | {aligned:.3f} | {fewer} |"
                )
    return "\n".join(lines)


def _p_value(policy: xr.Dataset, none: xr.Dataset) -> float:
    """One-sided Mann-Whitney U: are the policy's candidate objectives larger than none's?"""
    a = policy.objective.where(policy.status == "ok", drop=True).values
    b = none.objective.where(none.status == "ok", drop=True).values
    return float(mannwhitneyu(a, b, alternative="greater").pvalue)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/compare-spaces", help="folder for the runs")
    parser.add_argument("--quick", action="store_true", help="4 candidates per search")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        run_all(out, client, 4 if args.quick else COMMON["experiment"]["max_candidates"])
    text = "\n\n".join([table(out), per_run_fractions(out), paired_table(out)]) + "\n"
    (out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
