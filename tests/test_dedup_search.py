"""A frozen-transfer search stores what children inherit once, and finds the same candidates."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from distributed import Client

from ckptnas import CheckpointStore, LineageRegistry
from ckptnas.cli import main
from ckptnas.config import Config, config_from_dict
from ckptnas.runtime import Experiment
from ckptnas.storage import checkpoint_usage
from ckptnas.storage._blobs import scan_references
from ckptnas.storage._checkpoints import tensor_sha256
from ckptnas.storage._header import digest_of


def frozen(config: Config, dedup: bool) -> Config:
    """Sequential evolution over a small population, with frozen transfer."""
    return (
        config.replace("experiment", max_candidates=10, max_in_flight=1)
        .replace("search", population_size=2, sample_size=2, mutation_bias=3.0)
        .replace("transfer", freeze=True, dedup=dedup)
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, client: Client) -> dict[bool, Path]:
    """The same frozen search, with and without dedup."""
    from conftest import TINY

    out = {}
    for dedup in (True, False):
        run_dir = tmp_path_factory.mktemp(f"dedup-{dedup}")
        Experiment(frozen(config_from_dict(TINY), dedup), run_dir, progress=False).run(client)
        out[dedup] = run_dir
    return out


def records(run_dir: Path) -> list[tuple[int, int | None, str | None, float | None]]:
    with LineageRegistry(run_dir, readonly=True) as reg:
        return [(r.id, r.parent, r.checkpoint_digest, r.objective) for r in reg.candidates()]


def test_dedup_changes_no_candidate(runs: dict[bool, Path]) -> None:
    with_dedup, without = records(runs[True]), records(runs[False])
    assert with_dedup == without
    assert sum(parent is not None for _, parent, _, _ in with_dedup) >= 5


def test_every_checkpoint_loads_to_its_recorded_digest(runs: dict[bool, Path]) -> None:
    store = CheckpointStore(runs[True])
    with LineageRegistry(runs[True], readonly=True) as reg:
        recorded = {r.id: r for r in reg.candidates()}
    for r in recorded.values():
        assert r.checkpoint_digest is not None
        tensors = store.load(r.id, digest=r.checkpoint_digest)
        assert digest_of({n: tensor_sha256(t) for n, t in tensors.items()}) == r.checkpoint_digest
        if r.parent is not None:  # what it inherited frozen is its donor's, bit for bit
            donor = recorded[r.parent]
            inherited = store.load(donor.id, r.transferred, donor.checkpoint_digest)
            for name in r.transferred:
                assert torch.equal(tensors[name], inherited[name]), name


def test_inherited_tensors_take_no_disk_space_again(runs: dict[bool, Path]) -> None:
    shared, plain = checkpoint_usage(runs[True]), checkpoint_usage(runs[False])
    assert plain.bytes_shared == 0 and shared.bytes_shared > 0
    assert shared.n_checkpoints == plain.n_checkpoints == 10
    # What the run saved is what it left out: the same files, less the shared tensors (the
    # headers differ by a few hundred bytes a file, the entries that say where tensors are).
    assert abs(shared.bytes_without_sharing - plain.bytes_on_disk) < 10 * 1000
    assert shared.bytes_on_disk < plain.bytes_on_disk - shared.bytes_shared // 2


def test_reference_counts_match_the_checkpoints(runs: dict[bool, Path]) -> None:
    store = CheckpointStore(runs[True])
    counts = {d: n for d, n in store.blobs.refcounts().items() if n}
    assert counts == {d: len(r) for d, r in scan_references(store.root).items()} != {}


def test_summary_shows_the_bytes_saved(
    runs: dict[bool, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(runs[True])]) == 0
    lines = capsys.readouterr().out.splitlines()
    usage = checkpoint_usage(runs[True])
    assert usage.describe() in lines
    assert "saved by storing frozen tensors once" in usage.describe()
    assert main(["summary", str(runs[False])]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("checkpoints:"))
    assert "saved" not in line and f"({checkpoint_usage(runs[False]).n_checkpoints} files)" in line


def test_the_run_logs_its_disk_use(
    tiny_config: Config, tmp_path: Path, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    config = frozen(tiny_config, dedup=True).replace("experiment", max_candidates=4)
    with caplog.at_level(logging.INFO, logger="ckptnas"):
        Experiment(config, tmp_path, progress=False).run(client)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("checkpoints:")]
    assert logged == [checkpoint_usage(tmp_path).describe()]
    assert np.isfinite(checkpoint_usage(tmp_path).fraction_saved)
