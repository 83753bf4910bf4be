"""Fault injection: workers killed, checkpoints broken, candidates diverging.

Each test checks that the final registry and results hold every candidate exactly once and that
no warm start used a broken donor.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from ckptnas import CheckpointStore, LineageRegistry
from ckptnas.config import Config
from ckptnas.runtime import (
    CandidateResult,
    CandidateSpec,
    Experiment,
    donor_cache,
    train_candidate,
)
from ckptnas.storage import RunDir

# The trainers below run on worker processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def kill_first_attempt_of_3(spec: CandidateSpec) -> CandidateResult:
    """Candidate 3's worker is killed (SIGKILL) the first time it trains it."""
    marker = Path(spec.run_dir) / "killed-once"
    if spec.candidate_id == 3 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return train_candidate(spec)


def kill_first_continuation(spec: CandidateSpec) -> CandidateResult:
    """The worker of the first promoted candidate is killed when it starts to continue it.

    Dask reruns the task elsewhere (the client never hears of it); the rerun must find the
    version of the checkpoint it was planned from and its training state.
    """
    marker = Path(spec.run_dir) / "killed-once"
    if spec.start_epoch and not marker.exists():
        marker.write_text(str(spec.candidate_id))
        os.kill(os.getpid(), signal.SIGKILL)
    return train_candidate(spec)


def always_kill_on_3(spec: CandidateSpec) -> CandidateResult:
    """Candidate 3 kills every worker that trains it."""
    if spec.candidate_id == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return train_candidate(spec)


def corrupt_checkpoints_of_1_and_2(spec: CandidateSpec) -> CandidateResult:
    """Candidates 1 and 2 train normally, then their checkpoints are damaged on disk."""
    result = train_candidate(spec)
    if spec.candidate_id in (1, 2) and result.status == "ok":
        path = CheckpointStore(spec.run_dir).path(spec.candidate_id)
        mode = (Path(spec.run_dir) / "damage").read_text()
        raw = bytearray(path.read_bytes())
        if mode == "truncate":
            raw = raw[: len(raw) // 2]
        else:  # flip one bit in every tensor, leaving the header intact
            header_len = int.from_bytes(raw[:8], "little")
            header = json.loads(raw[8 : 8 + header_len])
            for name, info in header.items():
                if name != "__metadata__":
                    raw[8 + header_len + info["data_offsets"][0]] ^= 0x10
        path.write_bytes(bytes(raw))
        # As from a worker that restarted since: its copy of what it wrote is gone too.
        donor_cache().discard(CheckpointStore(spec.run_dir), spec.candidate_id)
    return result


def diverge_candidate_2(spec: CandidateSpec) -> CandidateResult:
    """Candidate 2 trains with an absurd learning rate and blows up."""
    if spec.candidate_id == 2:
        spec = replace(spec, settings=replace(spec.settings, learning_rate=1e12, epochs=3))
    return train_candidate(spec)


def evolving(config: Config, n: int = 10) -> Config:
    """Sequential evolution over a small population: children soon look for donors."""
    return config.replace("experiment", max_candidates=n, max_in_flight=2, max_retries=1).replace(
        "search", population_size=2, sample_size=2, mutation_bias=3.0
    )


def check_exactly_once(ds: xr.Dataset, run_dir: Path, n: int) -> None:
    assert list(ds.candidate.values) == list(range(1, n + 1))
    with LineageRegistry(run_dir, readonly=True) as reg:
        records = reg.candidates()
    assert [r.id for r in records] == list(range(1, n + 1))
    assert all(r.status in ("ok", "failed") for r in records)
    store = CheckpointStore(run_dir)
    for r in records:  # every tensor a warm start took was intact, from a finished donor
        if r.parent is not None:
            parent = next(p for p in records if p.id == r.parent)
            assert parent.status == "ok" and parent.donor_usable
            store.load(parent.id, names=r.transferred, digest=parent.checkpoint_digest)


@pytest.fixture(scope="module")
def strict_client() -> Iterator[Client]:
    """A cluster whose scheduler gives up on a task after its first killed worker."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_killed_worker_costs_only_that_attempt(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    pids_before = set(client.run(os.getpid).values())
    ds = Experiment(
        evolving(tiny_config), tmp_path, progress=False, trainer=kill_first_attempt_of_3
    ).run(client)
    assert (tmp_path / "killed-once").exists()
    client.wait_for_workers(2)
    assert set(client.run(os.getpid).values()) != pids_before  # a worker really died
    check_exactly_once(ds, tmp_path, 10)
    assert set(ds.status.values) == {"ok"}


def test_killed_worker_mid_promotion_continues_elsewhere(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = evolving(tiny_config).replace(
        "search", scheduler="asha", min_epochs=1, max_epochs=4, reduction_factor=2
    )
    ds = Experiment(config, tmp_path, progress=False, trainer=kill_first_continuation).run(client)
    killed = int((tmp_path / "killed-once").read_text())
    client.wait_for_workers(2)
    check_exactly_once(ds, tmp_path, 10)
    assert set(ds.status.values) == {"ok"}
    assert int(ds["epochs_trained"].sel(candidate=killed)) >= 2
    assert np.isfinite(ds["val_metric"].sel(candidate=killed).values[:2]).all()
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert all(r.target_epochs == len(reg.curve(r.id)) for r in reg.candidates())


def test_candidate_that_always_kills_is_failed_after_bounded_retries(
    tiny_config: Config, tmp_path: Path, strict_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ckptnas"):
        ds = Experiment(
            evolving(tiny_config), tmp_path, progress=False, trainer=always_kill_on_3
        ).run(strict_client)
    warnings = [r.getMessage() for r in caplog.records]
    assert any("candidate 3: attempt 1 failed" in w and "retrying" in w for w in warnings)
    assert any("candidate 3 failed: KilledWorker" in w for w in warnings)
    check_exactly_once(ds, tmp_path, 10)
    assert str(ds.status.sel(candidate=3).values) == "failed"
    assert "KilledWorker" in str(ds.error.sel(candidate=3).values)
    assert int(ds.attempts.sel(candidate=3)) == 2  # two tries, recorded once
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert "attempt 1 failed" in reg.get(3).note
        assert 3 not in [r.parent for r in reg.candidates()]
    assert (ds.status == "ok").sum() == 9


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_broken_donor_is_never_used(
    tiny_config: Config,
    tmp_path: Path,
    client: Client,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    RunDir(tmp_path).create()  # the trainer reads its orders from the run directory
    (tmp_path / "damage").write_text(damage)
    # With one candidate in flight and a population of two, candidate 3 is a one-node
    # mutation of 1 or 2, whose broken checkpoints are then its closest donors.
    config = evolving(tiny_config).replace("experiment", max_in_flight=1)
    with caplog.at_level(logging.WARNING, logger="ckptnas"):
        ds = Experiment(
            config, tmp_path, progress=False, trainer=corrupt_checkpoints_of_1_and_2
        ).run(client)
    assert any("rejected" in r.getMessage() for r in caplog.records)
    check_exactly_once(ds, tmp_path, 10)
    with LineageRegistry(tmp_path, readonly=True) as reg:
        rejected = [r for r in reg.candidates() if "rejected" in r.note]
        assert rejected, "no candidate tried a broken donor; the test did not exercise the fault"
        for broken in (1, 2):
            assert reg.children(broken) == []
            if any(f"donor {broken} rejected" in r.note for r in rejected):
                assert not reg.get(broken).donor_usable
                assert "not a donor" in reg.get(broken).note
    assert all(r.status == "ok" for r in rejected)


def test_diverging_candidate_fails_and_is_never_a_parent(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = evolving(tiny_config).replace("experiment", max_in_flight=1)
    ds = Experiment(config, tmp_path, progress=False, trainer=diverge_candidate_2).run(client)
    check_exactly_once(ds, tmp_path, 10)
    assert str(ds.status.sel(candidate=2).values) == "failed"
    assert "not finite" in str(ds.error.sel(candidate=2).values)
    # the partial curve is kept: the epochs it ran, with their (non-finite) losses
    assert int(ds.epoch_time.sel(candidate=2).notnull().sum()) >= 1
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert len(reg.curves()[2]) >= 1
    assert 2 not in ds.parent.values
    assert not CheckpointStore(tmp_path).exists(2)
