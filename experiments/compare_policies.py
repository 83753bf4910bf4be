"""Reproduce the published comparison: warm-started (lcp) vs scratch (none) search, then top-K.

For each dataset config ``experiments/compare_<dataset>.toml`` this runs the same search (same
seeds, budget and strategy) once per policy and seed on one shared LocalCluster, fully trains
the top-K candidates of the chosen searches from scratch and from their checkpoints, gathers
every run into ``<out>/<dataset>/comparison.nc`` (dims ``policy``, ``seed``, ...) and writes the
table (``table.txt``) and figures next to it. Finished runs are reused, so an interrupted
comparison continues where it stopped.

    python experiments/compare_policies.py                    # the full comparison (~20 min)
    python experiments/compare_policies.py --quick --out /tmp/q   # a miniature (seconds)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client

from ckptnas.analysis import Comparison, compare_runs, policy_label
from ckptnas.config import Config, config_from_dict
from ckptnas.runtime import Experiment, connect, data_key, get_data
from ckptnas.topk import TopKSettings, train_topk

HERE = Path(__file__).resolve().parent

#: Overrides of the miniature: a few tiny candidates, two policies, one short full training.
QUICK: dict[str, Any] = {
    "compare": {
        "seeds": [0, 1],
        "policies": ["none", "lcp+freeze"],
        "topk_policies": ["lcp+freeze"],
        "topk_k": 1,
        "topk_max_epochs": 3,
        "topk_patience": 2,
    },
    "experiment": {"max_candidates": 6, "max_in_flight": 2, "flush_interval": 0.5},
    "data": {"n_samples": 300},
    "space": {"units": [8, 16], "num_nodes": 2},
    "search": {"population_size": 2, "sample_size": 1},
    "training": {"epochs": 1},
}


@dataclass(frozen=True)
class GridSpec:
    """One dataset's comparison: the base configuration and the grid around it."""

    name: str
    config: Config
    seeds: tuple[int, ...]
    policies: tuple[str, ...]
    topk_policies: tuple[str, ...]
    topk: TopKSettings


def _policy_settings(label: str) -> dict[str, Any]:
    if label == "none":
        return {"policy": "none", "freeze": False}
    policy, _, freeze = label.partition("+")
    return {"policy": policy, "freeze": freeze == "freeze"}


def load_grid(path: Path, quick: bool = False) -> GridSpec:
    """Read a comparison TOML: a ``[compare]`` table plus an ordinary ckptnas configuration."""
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    if quick:
        values = {k: {**values.get(k, {}), **v} for k, v in QUICK.items()} | {
            k: v for k, v in values.items() if k not in QUICK
        }
    grid = values.pop("compare")
    return GridSpec(
        name=path.stem.removeprefix("compare_"),
        config=config_from_dict(values),
        seeds=tuple(grid["seeds"]),
        policies=tuple(grid["policies"]),
        topk_policies=tuple(grid["topk_policies"]),
        topk=TopKSettings(grid["topk_k"], grid["topk_max_epochs"], grid["topk_patience"]),
    )


def run_grid(
    grid: GridSpec, out: Path, client: Client, progress: bool = False
) -> tuple[list[Path], dict[str, float]]:
    """Run every (policy, seed) search and the top-K training; return run dirs and timings."""
    runs, timings = [], {"search": 0.0, "topk": 0.0}
    for seed in grid.seeds:  # build every dataset on every worker first: no run pays for it
        client.run(get_data, data_key(grid.config.data, seed))
    for seed in grid.seeds:
        for label in grid.policies:
            config = grid.config.replace("transfer", **_policy_settings(label))
            config = config.replace("experiment", seed=seed)
            run_dir = out / grid.name / label.replace("+", "-") / f"seed{seed}"
            resume = (run_dir / "lineage.sqlite").exists()
            tic = time.perf_counter()
            Experiment(config, run_dir, progress=progress, resume=resume).run(client)
            timings["search"] += time.perf_counter() - tic
            if policy_label(config.transfer.policy, config.transfer.freeze) in grid.topk_policies:
                tic = time.perf_counter()
                train_topk(run_dir, grid.topk, client=client, progress=progress)
                timings["topk"] += time.perf_counter() - tic
            print(f"  {grid.name} {label} seed {seed}: done", flush=True)
            runs.append(run_dir)
    return runs, timings


def compare_grid(
    grid: GridSpec, out: Path, client: Client, figures: Path | None = None
) -> Comparison:
    """Run a dataset's grid, gather it and write ``comparison.nc``, ``table.txt``, figures."""
    tic = time.perf_counter()
    runs, timings = run_grid(grid, out, client)
    comparison = compare_runs(runs, out / grid.name)
    total = time.perf_counter() - tic
    text = (
        f"{comparison.table}\n\nwall time of this invocation: searches {timings['search']:.0f} s, "
        f"top-K full training {timings['topk']:.0f} s, total {total:.0f} s"
    )
    (out / grid.name / "table.txt").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for file in comparison.files:
            if file.suffix == ".png":
                shutil.copy(file, figures / f"{grid.name}_{file.name}")
    return comparison


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "diabetes"])
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--figures", type=Path, help="also copy the PNG figures here")
    parser.add_argument("--workers", type=int, default=0, help="LocalCluster workers")
    parser.add_argument("--quick", action="store_true", help="a miniature, in seconds")
    args = parser.parse_args(argv)
    grids = [load_grid(HERE / f"compare_{d}.toml", args.quick) for d in args.datasets]
    cluster = grids[0].config.replace("cluster", n_workers=args.workers)
    with connect(cluster) as client:
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers", flush=True)
        for grid in grids:
            compare_grid(grid, args.out, client, args.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
