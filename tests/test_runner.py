from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client
from helpers import shared_layers_by_hand

from ckptnas import LineageRegistry, load_model, load_results
from ckptnas.analysis import summarize
from ckptnas.config import Config
from ckptnas.errors import RunDirectoryError
from ckptnas.runtime import DeviceData, Experiment, connect, data_key, evaluate, run_space
from ckptnas.storage import build_dataset


def run(config: Config, run_dir: Path, client: Client, resume: bool = False) -> xr.Dataset:
    return Experiment(config, run_dir, progress=False, resume=resume).run(client)


def test_search_end_to_end(tiny_config: Config, tmp_path: Path, client: Client) -> None:
    ds = run(tiny_config, tmp_path, client)
    assert ds.sizes == {"candidate": 8, "epoch": 2, "node": len(ds.node)}
    assert set(ds.status.values) == {"ok"}
    # what is on disk is what the run returned
    xr.testing.assert_identical(load_results(tmp_path), ds)
    for name in (
        "arch",
        "parent",
        "n_transferred",
        "frac_params_transferred",
        "train_loss",
        "val_loss",
        "val_metric",
        "epoch_time",
        "objective",
        "status",
        "n_params",
        "worker",
        "submit_time",
        "start_time",
        "end_time",
    ):
        assert name in ds, name
    assert ds.val_metric.dims == ("candidate", "epoch")
    assert ds.arch.dims == ("candidate", "node")
    assert ds.attrs["dataset"] == "synthetic_combo" and "[transfer]" in ds.attrs["config"]
    assert ds.attrs["precision"] == "float32"
    assert ds.epoch_time.attrs["units"] == "s"
    np.testing.assert_array_equal(ds.objective, ds.val_metric.isel(epoch=-1))
    assert summarize(ds)["warm_share"] > 0
    # the population of 4 is drawn first, whatever finishes when; then evolution mutates
    assert list(ds.stage.values[:4]) == ["initial population"] * 4
    assert set(ds.stage.values[4:]) <= {"initial population", "mutation"}


def test_lineage_is_a_tree_of_exact_transfers(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    ds = run(tiny_config.replace("experiment", max_candidates=10), tmp_path, client)
    space = run_space(tmp_path)
    with LineageRegistry(tmp_path, readonly=True) as reg:
        records = {r.id: r for r in reg}
        for record in records.values():
            if record.parent is None:
                assert not record.transferred
                continue
            parent = records[record.parent]
            # one parent, trained and finished before the child was submitted
            assert parent.status == "ok"
            assert parent.end_time <= record.submit_time
            assert record.id not in reg.ancestors(record.id)
            expected = shared_layers_by_hand(space, record.arch, parent.arch)
            assert len(record.transferred) == 2 * len(expected)
            assert int(ds.n_transferred.sel(candidate=record.id)) == len(record.transferred)


def test_best_model_loads_and_reproduces_its_objective(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    ds = run(tiny_config, tmp_path, client)
    best = int(ds.objective.idxmax())
    model = load_model(tmp_path, best)
    assert isinstance(model, torch.nn.Module)
    data = DeviceData.of(
        data_key(tiny_config.data, tiny_config.experiment.seed), torch.device("cpu")
    )
    _, metric = evaluate(model.network, data)  # the bare network takes the scaled data
    assert metric == pytest.approx(float(ds.objective.sel(candidate=best)), abs=1e-5)


def test_policy_none_trains_everything_from_scratch(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    ds = run(tiny_config.replace("transfer", policy="none"), tmp_path, client)
    assert (ds.parent == -1).all() and (ds.n_transferred == 0).all()


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_existing_run_is_refused_and_untouched(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    run(tiny_config.replace("experiment", max_candidates=3), tmp_path, client)
    before = _tree_digest(tmp_path)
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        run(tiny_config, tmp_path, client)
    assert _tree_digest(tmp_path) == before


def test_resume_extends_a_run_without_repeats(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    run(tiny_config.replace("experiment", max_candidates=4), tmp_path, client)
    ds = run(tiny_config.replace("experiment", max_candidates=7), tmp_path, client, resume=True)
    assert list(ds.candidate.values) == list(range(1, 8))
    archs = {tuple(a) for a in ds.arch.values}
    assert len(archs) == 7


def test_results_file_is_rewritten_during_the_run(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = tiny_config.replace("experiment", flush_interval=0.001)
    ds = run(config, tmp_path, client)
    with LineageRegistry(tmp_path, readonly=True) as reg:
        xr.testing.assert_identical(build_dataset(reg, 2), ds)
    assert not list(tmp_path.glob("*.tmp"))


def _malloc_trim_threshold() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_embedded_cluster_workers_keep_glibc_malloc_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Dask's default would make every tensor above 128 KiB a fresh mmap in training workers.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with connect(Config().replace("cluster", n_workers=1)) as client:
        assert list(client.run(_malloc_trim_threshold).values()) == [None]


def _worker_profiles(dask_worker: object) -> bool:
    return "profile" in dask_worker.periodic_callbacks  # type: ignore[attr-defined]


@pytest.mark.parametrize("profile", [False, True])
def test_embedded_cluster_workers_profile_only_when_asked(profile: bool) -> None:
    config = Config().replace("cluster", n_workers=1, worker_profile=profile)
    with connect(config) as client:
        assert list(client.run(_worker_profiles).values()) == [profile]
