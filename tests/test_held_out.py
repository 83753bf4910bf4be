"""The held-out test split: nothing of the search sees it, finished models are scored on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client

from ckptnas.config import Config, config_from_dict
from ckptnas.data import load_data
from ckptnas.errors import ConfigError, DataError
from ckptnas.runtime import Experiment, score_candidate
from ckptnas.storage import LineageRegistry, load_topk
from ckptnas.topk import TopKSettings, train_topk

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"


def _write_data(path: Path, rows: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = x @ rng.normal(size=6) + 0.3 * rng.normal(size=rows)
    xr.Dataset({"x": (("sample", "feature"), x), "y": ("sample", y)}).to_netcdf(path)
    return path


def _config(data: Path, **data_keys: object) -> Config:
    return config_from_dict(
        {
            "experiment": {"name": "held-out", "seed": 5, "max_candidates": 6, "max_in_flight": 1},
            "data": {"kind": "netcdf", "path": str(data), "inputs": ["x"], "target": "y"}
            | data_keys,
            "space": {"num_nodes": 2, "units": [8, 16], "activations": ["relu", "tanh"]},
            "search": {"population_size": 3, "sample_size": 2, "mutation_bias": 1.0},
            "training": {"epochs": 2, "batch_size": 32},
        }
    )


def _search_and_full_training(config: Config, run: Path, client: Client) -> xr.Dataset:
    Experiment(config, run, progress=False).run(client)
    return train_topk(run, TopKSettings(k=2, max_epochs=3, patience=2), client=client)


def _ckptnas(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ckptnas", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=check)


def _decisions(run: Path) -> list[tuple[object, ...]]:
    with LineageRegistry(run, readonly=True) as registry:
        return [(r.id, r.arch, r.parent, r.objective) for r in registry.candidates()]


def test_test_labels_change_no_search_decision_only_the_test_metrics(
    tmp_path: Path, client: Client
) -> None:
    data = _write_data(tmp_path / "data.nc")
    config = _config(data, test_fraction=0.25)
    test_rows = load_data(config.data, seed=config.experiment.seed).test_index
    relabelled = tmp_path / "relabelled.nc"
    with xr.load_dataset(data) as ds:
        ds["y"][test_rows] = np.random.default_rng(9).normal(size=len(test_rows)) * 10
        ds.to_netcdf(relabelled)

    first = _search_and_full_training(config, tmp_path / "a", client)
    second = _search_and_full_training(
        config.replace("data", path=str(relabelled)), tmp_path / "b", client
    )

    assert _decisions(tmp_path / "a") == _decisions(tmp_path / "b")
    for same in ("candidate", "search_objective", "final_metric", "best_epoch", "val_metric"):
        np.testing.assert_array_equal(first[same].values, second[same].values, err_msg=same)
    assert np.all(np.isfinite(first.test_metric.values))
    assert not np.allclose(first.test_metric.values, second.test_metric.values)


def test_evaluate_scores_a_split_and_matches_what_full_training_recorded(
    tmp_path: Path, client: Client
) -> None:
    run = tmp_path / "run"
    topk = _search_and_full_training(_config(_write_data(tmp_path / "d.nc")), run, client)
    best = int(topk.candidate[0])
    with LineageRegistry(run, readonly=True) as registry:
        objective = registry.get(best).objective
    assert score_candidate(run, best, split="val").value == pytest.approx(objective, abs=1e-5)
    recorded = float(load_topk(run).test_metric.sel(rank=0, init="checkpoint"))
    scored = score_candidate(run, best, init="checkpoint")  # type: ignore[arg-type]
    assert (scored.rows, scored.n_rows) == ("test", 60)
    assert scored.value == pytest.approx(recorded, abs=1e-5)

    out = _ckptnas("evaluate", run, "--candidate", best).stdout
    assert f"candidate {best} (search weights): r2 = " in out
    assert "on 60 held-out test rows" in out
    # The order the usage gives: the file after the options.
    labelled = _ckptnas("evaluate", run, "--candidate", best, tmp_path / "d.nc").stdout
    assert "on 300 rows of" in labelled
    missing = _ckptnas("evaluate", run, "--candidate", best, tmp_path / "no.nc", check=False)
    assert missing.returncode == 2
    assert (
        missing.stderr == f"ckptnas: error: data file {str(tmp_path / 'no.nc')!r} does not exist\n"
    )


def test_a_run_without_test_rows_says_so(tmp_path: Path) -> None:
    old = Path(shutil.copytree(FIXTURE, tmp_path / "old"))
    summary = _ckptnas("summary", old).stdout
    assert "held-out test rows: none: this run holds no rows out" in summary
    evaluate = _ckptnas("evaluate", old, "--candidate", 1, check=False)
    assert evaluate.returncode != 0
    assert evaluate.stderr.count("\n") == 1 and "holds no test rows" in evaluate.stderr


def test_a_split_variable_assigns_each_row(tmp_path: Path) -> None:
    data = _write_data(tmp_path / "d.nc", rows=20)
    labels = np.array(["train"] * 12 + ["val"] * 5 + ["test"] * 3, dtype=object)
    with xr.load_dataset(data) as ds:
        ds["split"] = ("sample", labels)
        ds.to_netcdf(tmp_path / "split.nc")
    config = _config(tmp_path / "split.nc", split_variable="split")
    loaded = load_data(config.data, seed=0)
    assert loaded.test_index.tolist() == [17, 18, 19]
    assert loaded.val_index.tolist() == [12, 13, 14, 15, 16]

    labels[0] = "holdout"
    with xr.load_dataset(tmp_path / "split.nc") as ds:
        ds["split"] = ("sample", labels)
        ds.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(DataError, match="'holdout'; each row must be one of train, val, test"):
        load_data(_config(tmp_path / "bad.nc", split_variable="split").data, seed=0)


def test_bad_split_settings_are_refused_in_one_line() -> None:
    base = {"data": {"kind": "sklearn", "name": "diabetes"}}
    with pytest.raises(ConfigError, match="split_variable is for netCDF data"):
        config_from_dict({"data": base["data"] | {"split_variable": "split"}})
    with pytest.raises(ConfigError, match="leave no training rows"):
        config_from_dict({"data": {"val_fraction": 0.5, "test_fraction": 0.5}})
