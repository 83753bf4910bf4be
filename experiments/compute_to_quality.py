"""What warm-starting saves end to end: training epochs to reach the baseline's test quality.

For each data set and seed, three pipelines run on one shared LocalCluster, each a search and
then the full training of its top-K:

- ``baseline``: the search without warm starts (``policy = "none"``), then its top-K trained
  from scratch: what a user would run without ckptnas;
- ``ckptnas``: the search with transfer (``lcp``; ``aligned`` for the conv2d and cell spaces),
  then its top-K trained on from their checkpoints;
- ``ckptnas+asha``: the same with ASHA (rungs 1, 2, 4 epochs).

Every pipeline's cumulative training epochs are counted (every candidate's epochs, failed and
stopped ones included, then every full-training run's, in rank order), and after each
candidate and each full-training run the model the pipeline would hand over at that moment
(the best by validation metric: a search candidate, or a fully trained model) is scored on the
held-out test rows, which nothing of the pipeline saw. The headline figure is the epochs
ckptnas needs to reach the baseline's final test quality, as a ratio to the baseline's epochs
(a pipeline that never reaches it counts 0), median over seeds with a bootstrap 95% interval;
then the final test quality of each pipeline, paired by seed (Wilcoxon signed-rank).

Levers of the ckptnas pipelines are set with ``--set TABLE.KEY=VALUE`` (``topk.k`` and the
other ``topk.*`` keys for full training); the baseline keeps the defaults and its runs may be
shared between invocations (``--baseline DIR``), as in a sweep of levers on other seeds.

Each finished pipeline is kept (``<out>/<data>/<pipeline>/<seed>/``, its numbers in
``pipeline.json``), so an interrupted experiment continues where it stopped. Writes
``<out>/table.md``, ``<out>/summary.json`` and ``<out>/anytime.png``.

    python experiments/compute_to_quality.py --out runs/compute-to-quality     # ~1 h, 2 cores
    python experiments/compute_to_quality.py --quick --out /tmp/q              # a miniature
    python experiments/compute_to_quality.py --seeds 100 101 102 --set training.epochs=1 \
        --baseline runs/tune/baseline --out runs/tune/epochs1                   # one lever
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster

from ckptnas.config import Config, config_from_dict
from ckptnas.runtime import Experiment, score_candidate
from ckptnas.storage import CandidateStatus, Init, LineageRegistry
from ckptnas.topk import TopKSettings, train_topk

#: What every search shares: regularized evolution, the budget, epochs per candidate.
COMMON: dict[str, Any] = {
    "experiment": {"max_candidates": 30, "flush_interval": 5.0},
    "search": {"population_size": 6, "sample_size": 3, "mutation_bias": 1.0},
    "training": {"epochs": 2, "batch_size": 64},
}
#: Each data set: its tables, and the transfer policy ckptnas uses on its space.
DATASETS: dict[str, tuple[dict[str, Any], str]] = {
    "synthetic (dense)": (
        {
            "data": {"kind": "synthetic_combo", "n_samples": 3000},
            "space": {
                "num_nodes": 4,
                "units": [16, 32, 64],
                "shared_inputs": [["drug1", "drug2"]],
            },
        },
        "lcp",
    ),
    "digits (conv2d)": (
        {
            "data": {"kind": "sklearn", "name": "digits_images"},
            "space": {"kind": "conv2d", "options": {"filters": [8, 16], "units": [32, 64]}},
        },
        "aligned",
    ),
    "digits (cell)": (
        {
            "data": {"kind": "sklearn", "name": "digits_images"},
            "space": {"kind": "cell", "options": {"channels": 8, "num_cells": 2}},
        },
        "aligned",
    ),
    "breast cancer (dense)": (
        {
            "data": {"kind": "sklearn", "name": "breast_cancer"},
            "space": {"num_nodes": 3, "units": [16, 32, 64]},
        },
        "lcp",
    ),
    "diabetes (dense)": (
        {
            "data": {"kind": "sklearn", "name": "diabetes"},
            "space": {"num_nodes": 3, "units": [16, 32, 64]},
        },
        "lcp",
    ),
}
PIPELINES = ("baseline", "ckptnas", "ckptnas+asha")
ASHA = {"scheduler": "asha", "min_epochs": 1, "max_epochs": 4, "reduction_factor": 2}
TOPK = TopKSettings(k=3, max_epochs=30, patience=3)


@dataclass(frozen=True)
class Plan:
    """How the pipelines run: the miniature or not, and the levers of the ckptnas pipelines.

    The baseline always runs with the defaults, as a user without warm starts would; the
    levers (``--set training.epochs=1``: ``overrides``, table to keys; ``--set topk.k=2``:
    ``topk``) change the two ckptnas pipelines only.
    """

    quick: bool = False
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    topk: dict[str, Any] = field(default_factory=dict)

    def topk_settings(self, pipeline: str) -> TopKSettings:
        """The full training of a pipeline's top-K."""
        quick = {"k": 2, "max_epochs": 3, "patience": 2} if self.quick else {}
        return replace(TOPK, **(quick | ({} if pipeline == "baseline" else self.topk)))


def pipeline_config(dataset: str, pipeline: str, seed: int, plan: Plan) -> Config:
    """The search configuration of one pipeline of one data set and seed."""
    tables, policy = DATASETS[dataset]
    values: dict[str, Any] = {name: dict(table) for name, table in COMMON.items()} | tables
    values["experiment"] = COMMON["experiment"] | {"seed": seed, "name": f"{pipeline}-{seed}"}
    values["transfer"] = {"policy": "none" if pipeline == "baseline" else policy}
    if pipeline == "ckptnas+asha":
        values["search"] = COMMON["search"] | ASHA
    if plan.quick:
        values["experiment"]["max_candidates"] = 4
        values["search"] = values["search"] | {"population_size": 2, "sample_size": 1}
        values["training"] = COMMON["training"] | {"epochs": 1}
        if pipeline == "ckptnas+asha":
            values["search"] |= {"max_epochs": 2}
    for table, keys in plan.overrides.items():
        if pipeline != "baseline":
            values[table] = values.get(table, {}) | keys
    return config_from_dict(values)


def parse_levers(settings: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``TABLE.KEY=VALUE`` settings (TOML values) as overrides, ``topk.*`` ones apart."""
    overrides: dict[str, dict[str, Any]] = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        table, _, key = name.partition(".")
        overrides.setdefault(table, {})[key] = tomllib.loads(f"v = {text}")["v"]
    return overrides, overrides.pop("topk", {})


def run_pipeline(  # noqa: PLR0913  # which pipeline, then where and how it runs
    dataset: str, pipeline: str, seed: int, out: Path, client: Client, plan: Plan
) -> dict[str, Any]:
    """Search, fully train the top-K, and trace the test quality against epochs spent."""
    run = out / _slug(dataset) / pipeline / str(seed)
    numbers_file = run / "pipeline.json"
    if numbers_file.is_file():
        numbers: dict[str, Any] = json.loads(numbers_file.read_text(encoding="utf-8"))
        return numbers
    if run.exists():  # an interrupted pipeline: start it again from nothing
        shutil.rmtree(run)
    tic = time.perf_counter()
    Experiment(pipeline_config(dataset, pipeline, seed, plan), run, progress=False).run(client)
    init = Init.SCRATCH if pipeline == "baseline" else Init.CHECKPOINT
    settings = plan.topk_settings(pipeline)
    topk = train_topk(run, settings, inits=(init,), client=client, progress=False)
    wall = time.perf_counter() - tic
    trace = _search_trace(run) + _full_training_trace(run, topk, init)
    numbers = {"wall_s": wall, "trace": _handed_over(run, trace)}
    numbers_file.write_text(json.dumps(numbers), encoding="utf-8")
    return numbers


def _search_trace(run: Path) -> list[dict[str, Any]]:
    """Each finished candidate in the order it ended: the epochs it trained, its objective."""
    with LineageRegistry(run, readonly=True) as registry:
        records = [r for r in registry.candidates() if r.status != CandidateStatus.PENDING]
        curves = registry.curves()
    return [
        {
            "epochs": len(curves.get(r.id, ())),
            "val": r.objective if r.status == CandidateStatus.OK else math.nan,
            "model": {"candidate": r.id, "init": None},
        }
        for r in sorted(records, key=lambda r: r.end_time)
    ]


def _full_training_trace(run: Path, topk: Any, init: Init) -> list[dict[str, Any]]:
    """Each full-training run in rank order: its epochs, its kept epoch's validation metric."""
    trace = []
    for rank in topk["rank"].values:
        cell = topk.sel(rank=rank, init=str(init))
        if str(cell.status.values) == "missing":
            continue
        ok = str(cell.status.values) == CandidateStatus.OK
        trace.append(
            {
                "epochs": int(np.nan_to_num(cell.n_epochs.values)),
                "val": float(cell.final_metric) if ok else math.nan,
                "model": {"candidate": int(topk.candidate.sel(rank=rank)), "init": str(init)},
                "test": float(cell.test_metric) if ok else math.nan,
            }
        )
    return trace


def _handed_over(run: Path, trace: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Cumulative epochs, and the test metric of the best model by validation at each step.

    Only the models that become the best are scored (a search candidate from its checkpoint;
    a fully trained model's test metric is the one full training recorded).
    """
    points, epochs, best_val, best_test = [], 0, -math.inf, math.nan
    for step in trace:
        epochs += step["epochs"]
        if math.isfinite(step["val"]) and step["val"] > best_val:
            best_val = step["val"]
            best_test = step.get("test", math.nan)
            if step["model"]["init"] is None:
                best_test = score_candidate(run, step["model"]["candidate"]).value
        points.append({"epochs": epochs, "val": best_val, "test": best_test})
    return points


def epochs_to_reach(trace: list[dict[str, float]], quality: float) -> float:
    """The cumulative epochs at which the handed-over model's test metric first reaches
    ``quality`` (infinite: never)."""
    for point in trace:
        if point["test"] >= quality:
            return float(point["epochs"])
    return math.inf


def bootstrap_median(values: Sequence[float], n: int = 10_000, seed: int = 0) -> tuple[float, ...]:
    """The median and its percentile bootstrap 95% interval (seeds resampled)."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(n, len(x)), replace=True), axis=1)
    return (
        float(np.median(x)),
        float(np.percentile(medians, 2.5)),
        float(np.percentile(medians, 97.5)),
    )


def summarize(results: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> dict[str, Any]:
    """Per data set: the ratio of epochs (median, interval) and the final test qualities."""
    from scipy.stats import wilcoxon

    summary: dict[str, Any] = {}
    for dataset, by_pipeline in results.items():
        seeds = sorted(by_pipeline["baseline"])
        base_final = [by_pipeline["baseline"][s]["trace"][-1]["test"] for s in seeds]
        base_epochs = [by_pipeline["baseline"][s]["trace"][-1]["epochs"] for s in seeds]
        entry: dict[str, Any] = {"seeds": seeds, "baseline": _finals(by_pipeline["baseline"])}
        for pipeline in PIPELINES[1:]:
            runs = by_pipeline[pipeline]
            needed = [
                epochs_to_reach(runs[s]["trace"], q) for s, q in zip(seeds, base_final, strict=True)
            ]
            ratios = [
                b / e if math.isfinite(e) and e > 0 else 0.0
                for b, e in zip(base_epochs, needed, strict=True)
            ]
            finals = [runs[s]["trace"][-1]["test"] for s in seeds]
            differences = np.subtract(finals, base_final)
            p = float(wilcoxon(differences).pvalue) if np.any(differences != 0) else 1.0
            entry[pipeline] = _finals(runs) | {
                "ratios": ratios,
                "ratio_median_ci": bootstrap_median(ratios),
                "reached": sum(math.isfinite(e) for e in needed),
                "final_minus_baseline": float(np.mean(differences)),
                "wilcoxon_p": p,
            }
        summary[dataset] = entry
    return summary


def _finals(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "final_test": [runs[s]["trace"][-1]["test"] for s in sorted(runs)],
        "epochs": [runs[s]["trace"][-1]["epochs"] for s in sorted(runs)],
        "wall_s": [runs[s]["wall_s"] for s in sorted(runs)],
    }


def table(summary: dict[str, Any], goals: dict[str, float]) -> str:
    """The headline table: one row per data set and ckptnas pipeline."""
    lines = [
        "| data (space) | pipeline | epochs to baseline's final test quality: ratio, median "
        "[95% CI] | reached | goal | final test: baseline → pipeline (mean) | Wilcoxon p | "
        "epochs: baseline / pipeline (mean) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset, entry in summary.items():
        goal = goals[dataset]
        for pipeline in PIPELINES[1:]:
            e = entry[pipeline]
            median, low, high = e["ratio_median_ci"]
            verdict = "met" if low > 1 and median >= goal else "not met"
            lines.append(
                f"| {dataset} | {pipeline} | {median:.2f}x [{low:.2f}, {high:.2f}] | "
                f"{e['reached']}/{len(entry['seeds'])} | {goal:g}x: {verdict} | "
                f"{np.mean(entry['baseline']['final_test']):.4f} → {np.mean(e['final_test']):.4f} "
                f"| {e['wilcoxon_p']:.3f} | {np.mean(entry['baseline']['epochs']):.0f} / "
                f"{np.mean(e['epochs']):.0f} |"
            )
    return "\n".join(lines)


def levers_table(sweeps: Sequence[Path], goals: dict[str, float]) -> str:
    """One row per lever setting and pipeline, from each sweep's ``summary.json``."""
    lines = [
        "| levers | pipeline | data sets met | seeds reaching the baseline | median ratio per "
        "data set | final test minus baseline (mean) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for sweep in sweeps:
        summary = json.loads((sweep / "summary.json").read_text(encoding="utf-8"))
        for pipeline in PIPELINES[1:]:
            entries = {d: e[pipeline] for d, e in summary.items()}
            met = sum(
                e["ratio_median_ci"][1] > 1 and e["ratio_median_ci"][0] >= goals.get(d, 1.5)
                for d, e in entries.items()
            )
            reached = sum(e["reached"] for e in entries.values())
            seeds = sum(len(e["ratios"]) for e in entries.values())
            ratios = ", ".join(f"{e['ratio_median_ci'][0]:.2f}" for e in entries.values())
            difference = np.mean([e["final_minus_baseline"] for e in entries.values()])
            lines.append(
                f"| {sweep.name} | {pipeline} | {met}/{len(entries)} | {reached}/{seeds} | "
                f"{ratios} | {difference:+.4f} |"
            )
    return "\n".join(lines)


def anytime_figure(results: dict[str, Any], path: Path) -> Path:
    """Test quality of the handed-over model against cumulative epochs, per data set."""
    from matplotlib.figure import Figure

    cols = min(3, len(results))
    rows = math.ceil(len(results) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    colors = {"baseline": "tab:gray", "ckptnas": "tab:blue", "ckptnas+asha": "tab:orange"}
    for ax, (dataset, by_pipeline) in zip(axes, results.items(), strict=False):
        for pipeline, runs in by_pipeline.items():
            for k, seed in enumerate(sorted(runs)):
                trace = runs[seed]["trace"]
                ax.step(
                    [p["epochs"] for p in trace],
                    [p["test"] for p in trace],
                    where="post",
                    color=colors[pipeline],
                    alpha=0.6,
                    lw=1,
                    label=pipeline if k == 0 else None,
                )
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("cumulative training epochs", fontsize=8)
        ax.set_ylabel("held-out test metric", fontsize=8)
    for ax in axes[len(results) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compute-to-quality"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--quick", action="store_true", help="one seed, a tiny budget")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="a lever of the ckptnas pipelines (training.epochs=1, transfer.freeze=true, topk.k=2)",
    )
    parser.add_argument(
        "--baseline", type=Path, help="where the baseline runs are (kept, or run), default --out"
    )
    parser.add_argument(
        "--levers-table", type=Path, nargs="+", help="print the table of finished sweeps; run none"
    )
    args = parser.parse_args(argv)
    if args.levers_table:
        print(levers_table(args.levers_table, _goals(DATASETS)))
        return 0
    seeds = args.seeds[:1] if args.quick else args.seeds
    plan = Plan(args.quick, *parse_levers(args.set))
    baseline_out = args.baseline or args.out
    tic = time.perf_counter()
    results: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as c,
        Client(c) as client,
    ):
        for dataset in args.data:
            for seed in seeds:
                for pipeline in PIPELINES:
                    out = baseline_out if pipeline == "baseline" else args.out
                    numbers = run_pipeline(dataset, pipeline, seed, out, client, plan)
                    results.setdefault(dataset, {}).setdefault(pipeline, {})[seed] = numbers
                    print(
                        f"{dataset} {pipeline} seed {seed}: {numbers['wall_s']:.0f} s", flush=True
                    )
    goals = _goals(results)
    summary = summarize(results)
    text = table(summary, goals)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    anytime_figure(results, args.out / "anytime.png")
    print(text)
    print(f"took {time.perf_counter() - tic:.0f} s")
    return 0


def _goals(datasets: Any) -> dict[str, float]:
    """The goal ratio of each data set: 3x on the synthetic set, 1.5x on the real ones."""
    return {d: 3.0 if d.startswith("synthetic") else 1.5 for d in datasets}


def _slug(dataset: str) -> str:
    return dataset.replace(" (", "-").replace(")", "").replace(" ", "_")


if __name__ == "__main__":
    sys.exit(main())
