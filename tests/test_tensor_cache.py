"""Workers' donor cache: the same verified tensors as the file, read once while they fit."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from distributed import Client

from ckptnas import Experiment
from ckptnas.config import Config
from ckptnas.errors import CheckpointError
from ckptnas.runtime import donor_cache_counts
from ckptnas.storage import CheckpointStore, LineageRegistry, TensorCache


def saved(tmp_path: Path, candidate_id: int, scale: float = 1.0) -> tuple[CheckpointStore, str]:
    store = CheckpointStore(tmp_path)
    tensors = {f"layer{i}.weight": torch.full((256,), scale * i) for i in range(4)}  # 1 KiB each
    return store, store.save(candidate_id, tensors)


def test_a_donor_read_twice_is_read_from_its_file_once(tmp_path: Path) -> None:
    store, digest = saved(tmp_path, 1)
    cache = TensorCache(max_bytes=1 << 20)
    first = cache.load(store, 1, ["layer1.weight", "layer2.weight"], digest)
    store.path(1).unlink()  # the second read cannot touch the file
    second = cache.load(store, 1, ["layer2.weight", "layer1.weight"], digest)
    for name in first:
        assert torch.equal(first[name], second[name])
    assert torch.equal(second["layer2.weight"], torch.full((256,), 2.0))
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.hit_rate) == (2, 2, 0.5)


def test_a_checkpoint_this_process_wrote_is_served_from_memory(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    weights = {f"layer{i}.weight": torch.full((256,), float(i)) for i in range(2)}
    digest = store.save(1, weights)
    cache = TensorCache(max_bytes=1 << 20)
    cache.put(store, 1, digest, weights)
    cache.put(store, 1, digest, weights)  # kept again: held once
    weights["layer1.weight"].add_(1)  # the writer goes on with its own tensors
    store.path(1).unlink()
    read = cache.load(store, 1, ["layer1.weight"], digest)
    assert torch.equal(read["layer1.weight"], torch.full((256,), 1.0))
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.bytes_held) == (1, 0, 2 * 1024)
    # Another version of the file is not served what was kept for this one.
    with pytest.raises(CheckpointError):
        cache.load(store, 1, ["layer1.weight"], "0" * 64)
    cache.discard(store, 1)  # a checkpoint deleted, or damaged on disk: read from the file
    assert cache.stats().bytes_held == 0
    with pytest.raises(CheckpointError):
        cache.load(store, 1, ["layer1.weight"], digest)


def test_the_least_recently_used_tensors_go_first(tmp_path: Path) -> None:
    store, digest = saved(tmp_path, 1)
    cache = TensorCache(max_bytes=2 * 1024)  # two tensors
    cache.load(store, 1, ["layer0.weight", "layer1.weight"], digest)
    cache.load(store, 1, ["layer0.weight"], digest)  # layer1 is now the oldest
    cache.load(store, 1, ["layer2.weight"], digest)
    assert cache.stats().bytes_held == 2 * 1024
    before = cache.stats()
    cache.load(store, 1, ["layer0.weight", "layer2.weight"], digest)
    cache.load(store, 1, ["layer1.weight"], digest)
    after = cache.stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 1)


def test_a_rewritten_checkpoint_is_read_again(tmp_path: Path) -> None:
    store, old = saved(tmp_path, 1)
    cache = TensorCache(max_bytes=1 << 20)
    cache.load(store, 1, ["layer1.weight"], old)
    _, new = saved(tmp_path, 1, scale=-1.0)  # the candidate trained on: a new version
    again = cache.load(store, 1, ["layer1.weight"], new)
    assert torch.equal(again["layer1.weight"], torch.full((256,), -1.0))
    assert cache.stats().misses == 2


def test_reads_without_a_digest_and_a_zero_budget_are_not_kept(tmp_path: Path) -> None:
    store, digest = saved(tmp_path, 1)
    for cache, with_digest in ((TensorCache(1 << 20), None), (TensorCache(0), digest)):
        cache.load(store, 1, ["layer1.weight"], with_digest)
        cache.load(store, 1, ["layer1.weight"], with_digest)
        assert (cache.stats().hits, cache.stats().bytes_held) == (0, 0)


def test_workers_read_donors_through_their_cache(
    tiny_config: Config, tmp_path: Path, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    before = sum(sum(c) for c in client.run(donor_cache_counts).values())
    with caplog.at_level(logging.INFO, logger="ckptnas"):
        Experiment(tiny_config, tmp_path, progress=False).run(client)
    reads = sum(sum(c) for c in client.run(donor_cache_counts).values()) - before
    with LineageRegistry(tmp_path, readonly=True) as registry:
        transferred = sum(len(r.transferred) for r in registry if r.parent is not None)
    assert transferred > 0 and reads == transferred
    assert any("donor tensor reads" in r.getMessage() for r in caplog.records)
