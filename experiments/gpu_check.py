"""Check the GPU path end to end and print its figures; runs on the CPU where there is no GPU.

Usage::

    python experiments/gpu_check.py [--candidates 16] [--epochs 3] [--rounds 3] [--out DIR]

A short run on a machine without a GPU (two CPU workers): ``--candidates 4 --epochs 1``.

On the embedded cluster (one worker per GPU, ``[training] device = "auto"``), it runs

1. a warm-start search (``lcp``) and the same search from scratch (``none``): the first-epoch
   validation metric of warm-started against scratch candidates, and the best objectives;
2. on one more cluster, of one worker, ``--rounds`` rounds of the warm search followed by its
   candidates again in a bare PyTorch loop in this process, on the same device: per round,
   the median epoch time on the cluster's worker over the bare loop's, and the median of
   these ratios.
   Alternating rounds keep a drift of the machine's speed (15% within a minute, seen once on
   an H200) out of the ratio: it moves single rounds, not their median;
3. the same bare loop with ``[training] precision = "bfloat16"`` (forward passes under
   autocast): its median epoch time and mean final validation metric against float32's;
4. the search with ``[cluster] candidates_per_gpu = 4`` against 1: aggregate epochs per second
   (packing gain; GPU only);

and reports peak GPU memory of the workers, the cluster's class (dask-cuda's
``LocalCUDACluster`` where it is installed) and the versions of torch, dask and distributed.
Figures go to standard output and, as JSON, to ``--out`` (default: ``$OUT`` when set, else
``gpu-check/``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import distributed
import numpy as np
import torch

from ckptnas import Experiment, LineageRegistry
from ckptnas.analysis import RunSummary
from ckptnas.config import Config, config_from_dict
from ckptnas.runtime import Curves, DeviceData, candidate_seed, connect, data_key, seed_weights
from ckptnas.space import SearchSpace
from ckptnas.storage import CandidateStatus

#: Combo-sized candidates: 20,000 rows, layers up to 512 wide, batch 256.
PROBLEM: dict[str, dict[str, Any]] = {
    "experiment": {"name": "gpu-check", "seed": 0},
    "data": {"kind": "synthetic_combo", "n_samples": 20_000},
    "space": {
        "num_nodes": 4,
        "input_nodes": 1,
        "units": [64, 128, 256, 512],
        "shared_inputs": [["drug1", "drug2"]],
    },
    "search": {"population_size": 6, "sample_size": 3, "mutation_bias": 1.0},
    "training": {"batch_size": 256, "device": "auto"},
}


def search(config: Config, run_dir: Path) -> tuple[Any, float]:
    """One search on a fresh embedded cluster: its results and its wall time."""
    with connect(config) as client:
        tic = time.perf_counter()
        ds = Experiment(config, run_dir, progress=False).run(client)
        seconds = time.perf_counter() - tic
        peaks = client.run(_peak_gpu_memory)
    ds.attrs["peak_worker_gpu_mib"] = max(peaks.values()) / 2**20
    ds.attrs["cluster"] = type(client.cluster).__name__
    return ds, seconds


def _peak_gpu_memory() -> int:
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else 0


def bare_epochs(
    config: Config, run_dir: Path, device: torch.device, precision: str = "float32"
) -> list[Curves]:
    """Each finished candidate trained again in this process: its curves, as workers time them.

    The donor's tensors are copied as the run recorded them, so the same networks train; the
    forward passes run in ``precision``.
    """
    if device.type == "cpu":
        torch.set_num_threads(1)  # as on a Dask worker, which starts with OMP_NUM_THREADS=1
    key = data_key(config.data, config.experiment.seed)
    data = DeviceData.of(key, device)
    with LineageRegistry(run_dir, readonly=True) as registry:
        records = registry.candidates(CandidateStatus.OK)
        space = SearchSpace.from_dict(registry.recorded_space())
    states: dict[int, dict[str, torch.Tensor]] = {}
    runs = []
    for record in records:
        seed = candidate_seed(config.experiment.seed, record.id)
        seed_weights(seed)
        model = space.build(record.arch).to(device)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in record.transferred:
                params[name].copy_(states[record.parent][name])  # type: ignore[index]
        optimizer = torch.optim.Adam(model.parameters(), lr=config.training.learning_rate)
        generator = torch.Generator(device=device).manual_seed(seed)
        curves = Curves()
        for _ in range(config.training.epochs):
            curves.fit_epoch(
                model, data, optimizer, config.training.batch_size, generator, precision=precision
            )
        runs.append(curves)
        states[record.id] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return runs


def epoch_rounds(
    config: Config, runs: Path, device: torch.device, rounds: int
) -> tuple[list[tuple[float, float]], list[Curves], Path]:
    """Searches alternating with their bare loops on one cluster: median epoch times per round.

    The cluster has one worker, as the bare loop is one loop: with two CPU workers on two
    cores, training side by side, the ratio was 1.14 against 1.04 with one
    (``--candidates 4 --epochs 1 --rounds 2``).
    Returns each round's (worker, bare) median epoch seconds, and the last round's bare-loop
    curves and run directory.
    """
    times = []
    with connect(config.replace("cluster", n_workers=1)) as client:
        for i in range(rounds):
            run_dir = runs / str(i)
            ds = Experiment(config, run_dir, progress=False).run(client)
            bare = bare_epochs(config, run_dir, device)
            times.append(
                (float(np.nanmedian(ds.epoch_time.values)), statistics.median(epoch_times(bare)))
            )
    return times, bare, run_dir


def epoch_times(runs: list[Curves]) -> list[float]:
    """Every epoch time of the runs, in one list."""
    return [t for curves in runs for t in curves.epoch_time]


def mean_final_metric(runs: list[Curves]) -> float:
    """The mean over runs of the validation metric after the last epoch."""
    return float(np.nanmean([curves.val_metric[-1] for curves in runs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    where = torch.cuda.get_device_name(0) if gpu else "no CUDA device: everything on the CPU"
    print(f"torch {torch.__version__}, {where}")
    config = (
        config_from_dict(PROBLEM)
        .replace("experiment", max_candidates=args.candidates)
        .replace("training", epochs=args.epochs)
    )
    if not gpu:
        config = config.replace("cluster", n_workers=2)
    report: dict[str, Any] = {
        "device": where,
        "candidates": args.candidates,
        "versions": {m.__name__: m.__version__ for m in (torch, dask, distributed)},
    }
    runs = Path(tempfile.mkdtemp(prefix="gpu-check-"))

    warm, warm_seconds = search(config, runs / "lcp")
    cold, _ = search(config.replace("transfer", policy="none"), runs / "none")
    headline = RunSummary.from_dataset(warm).headline()
    report["cluster"] = warm.attrs["cluster"]  # LocalCUDACluster where dask-cuda is installed
    report["warm"] = {
        "best_objective_lcp": float(warm.objective.max()),
        "best_objective_none": float(cold.objective.max()),
        **{k: headline[k] for k in ("warm_share", "first_epoch_metric_warm")},
        "first_epoch_metric_none_run": float(np.nanmean(cold.val_metric.isel(epoch=0))),
    }
    rounds, bare_float32, last_round = epoch_rounds(config, runs / "rounds", device, args.rounds)
    bare = statistics.median(epoch_times(bare_float32))
    report["epoch"] = {
        "worker_median_s": [r[0] for r in rounds],
        "bare_median_s": [r[1] for r in rounds],
        "ratio_per_round": [r[0] / r[1] for r in rounds],
        "ratio": statistics.median(r[0] / r[1] for r in rounds),
        "peak_worker_gpu_mib": warm.attrs["peak_worker_gpu_mib"],
    }
    # The candidates of float32's bare loop: with several in flight, which finish first (and
    # so which donors exist) depends on timing, and two runs of one search may part ways.
    bare_bfloat16 = bare_epochs(config, last_round, device, precision="bfloat16")
    bfloat16 = statistics.median(epoch_times(bare_bfloat16))
    report["precision"] = {
        "float32_median_s": bare,
        "bfloat16_median_s": bfloat16,
        "bfloat16_over_float32": bfloat16 / bare,
        "final_metric_float32": mean_final_metric(bare_float32),
        "final_metric_bfloat16": mean_final_metric(bare_bfloat16),
    }
    epochs_done = float(np.isfinite(warm.epoch_time.values).sum())
    report["packing"] = {"1": epochs_done / warm_seconds}
    if gpu:
        packed, packed_seconds = search(
            config.replace("cluster", candidates_per_gpu=4), runs / "packed"
        )
        report["packing"]["4"] = float(np.isfinite(packed.epoch_time.values).sum()) / packed_seconds
        report["packing"]["gain"] = report["packing"]["4"] / report["packing"]["1"]
    print(json.dumps(report, indent=2))
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
