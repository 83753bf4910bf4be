"""The Pareto front of a multi-objective search, checked against a brute-force filter."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from ckptnas.analysis import report_run
from ckptnas.config import Config
from ckptnas.runtime import Experiment
from ckptnas.storage import (
    CandidateStatus,
    LineageRegistry,
    build_dataset,
    load_results,
    non_dominated,
)


def brute_force_front(points: list[tuple[float, ...]], maximize: list[bool]) -> list[bool]:
    """Each point checked against every other, one objective at a time."""

    def as_good(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all((x >= y) if up else (x <= y) for x, y, up in zip(a, b, maximize, strict=True))

    front = []
    for i, p in enumerate(points):
        if any(np.isnan(p)):
            front.append(False)
            continue
        beaten = any(
            as_good(q, p) and q != p
            for j, q in enumerate(points)
            if j != i and not any(np.isnan(q))
        )
        front.append(not beaten)
    return front


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_matches_brute_force_with_ties_and_nan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 5, size=(40, 3)).astype(float)  # small integers: many ties
    points[rng.integers(0, 40, 3), rng.integers(0, 3, 3)] = np.nan
    maximize = [True, False, bool(seed % 2)]
    expected = brute_force_front([tuple(p) for p in points], maximize)
    assert non_dominated(points, maximize).tolist() == expected
    assert any(expected)


@pytest.mark.parametrize("second", ["n_params", "latency"])
def test_two_objective_search_marks_its_pareto_front(
    tiny_config: Config, tmp_path: Path, client: Client, second: str
) -> None:
    config = tiny_config.replace(
        "search",
        strategy="optuna",
        sampler="nsga2",
        sampler_options={"population_size": 4},
        objectives=["val_metric", second],
        directions=["maximize", "minimize"],
    )
    Experiment(config, tmp_path, progress=False).run(client)
    ds = load_results(tmp_path)
    assert ds.attrs["objectives"] == f"val_metric {second}"
    assert ds["pareto"].attrs["flag_meanings"] == "dominated non_dominated"
    ok = ds["status"].values == "ok"
    points = [
        (m, n) if good else (np.nan, np.nan)
        for m, n, good in zip(ds["objective"].values, ds[second].values, ok, strict=True)
    ]
    assert np.isfinite(ds[second].values[ok]).all() and (ds[second].values[ok] > 0).all()
    if second == "n_params":  # latency is timed only where something judges by it
        assert np.isnan(ds["latency"].values).all()
    assert ds["pareto"].values.astype(bool).tolist() == brute_force_front(points, [True, False])
    assert ds["pareto"].values.sum() >= 1
    files = report_run(tmp_path, tmp_path / "figures")
    assert (tmp_path / "figures" / "pareto_front.png") in files
    assert (tmp_path / "figures" / "pareto_front.png").stat().st_size > 1000


def test_objective_values_are_stored_once_and_the_front_reads_them(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    """The client computes each candidate's objective values once, when it records it."""
    config = tiny_config.replace(
        "search", objectives=["val_metric", "n_params"], directions=["maximize", "minimize"]
    )
    Experiment(config, tmp_path, progress=False).run(client)
    with LineageRegistry(tmp_path, readonly=True) as registry:
        ok = registry.candidates(CandidateStatus.OK)
    for record in ok:
        assert record.objective_values == (record.objective, float(record.n_params))
    # Another value stored for the smallest candidate: the front follows what is stored.
    smallest = min(ok, key=lambda r: r.n_params)
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        db.execute(
            "UPDATE candidates SET objective_values = ? WHERE id = ?",
            (json.dumps([2.0, 0.0]), smallest.id),
        )
    with LineageRegistry(tmp_path, readonly=True) as registry:
        ds = build_dataset(registry)
    front = ds["pareto"].sel(candidate=ds["pareto"] == 1).candidate.values.tolist()
    assert front == [smallest.id]  # it dominates every other candidate now
