"""Tensors a checkpoint shares with an earlier one: stored once, read back verified."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ckptnas.errors import CheckpointError
from ckptnas.storage import CheckpointStore, _checkpoints, _sharing, checkpoint_usage
from ckptnas.storage._blobs import scan_references

#: Bytes of one 64 x 64 float32 weight.
WEIGHT = 64 * 64 * 4


def donor_tensors(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        f"layer{i}.{kind}": torch.randn(*shape, generator=g)
        for i in range(3)
        for kind, shape in (("weight", (64, 64)), ("bias", (64,)))
    }


def child_of(donor: dict[str, torch.Tensor], seed: int, kept: int = 2) -> dict[str, torch.Tensor]:
    """The donor's first ``kept`` layers as they are (frozen); the others trained anew."""
    fresh = donor_tensors(seed)
    return {n: donor[n] if int(n[5]) < kept else fresh[n] for n in donor}


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path)


def shared_names(store: CheckpointStore, candidate_id: int) -> set[str]:
    from ckptnas.storage._header import read_header

    return set(read_header(store.path(candidate_id)).shared)


def test_a_frozen_tensor_is_stored_once(store: CheckpointStore, tmp_path: Path) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    donor_file = store.path(1).stat().st_size
    for child_id in range(2, 6):  # four children keep the same two layers
        store.save(child_id, child_of(donor, child_id), share_from=[(1, d1)])
    usage = checkpoint_usage(tmp_path)
    shared = 4 * 2 * (WEIGHT + 64 * 4)
    assert usage.bytes_shared == shared
    # Each child holds one layer of its own (and a header); the donor's bytes are there once.
    own = WEIGHT + 64 * 4
    assert usage.bytes_on_disk < donor_file + 4 * (own + 4096)
    assert len(list(store.blobs.root.glob("*.safetensors"))) == 1


def test_without_sharing_every_child_holds_every_tensor(
    store: CheckpointStore, tmp_path: Path
) -> None:
    donor = donor_tensors(0)
    store.save(1, donor)
    for child_id in range(2, 6):
        store.save(child_id, child_of(donor, child_id))
    usage = checkpoint_usage(tmp_path)
    assert usage.bytes_shared == 0
    assert usage.bytes_on_disk > 5 * 3 * (WEIGHT + 64 * 4)
    assert not store.blobs.root.exists()


def test_sharing_changes_neither_digest_nor_tensors(store: CheckpointStore) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    child = child_of(donor, 2)
    shared = store.save(2, child, share_from=[(1, d1)])
    assert shared_names(store, 2) == {
        "layer0.weight",
        "layer0.bias",
        "layer1.weight",
        "layer1.bias",
    }
    assert shared == store.save(3, child)
    loaded = store.load(2, digest=shared)
    assert loaded.keys() == child.keys()
    for name, t in child.items():
        assert torch.equal(loaded[name], t)


def test_only_tensors_of_the_same_dtype_and_shape_are_shared(store: CheckpointStore) -> None:
    donor = {"w": torch.arange(16, dtype=torch.float32).reshape(4, 4)}
    d1 = store.save(1, donor)
    same_bytes = {"w": donor["w"].reshape(2, 8).clone(), "v": donor["w"].view(torch.int32).clone()}
    store.save(2, same_bytes, share_from=[(1, d1)])
    assert shared_names(store, 2) == set()
    assert store.load(2)["w"].shape == (2, 8)


def test_a_grandchild_refers_to_the_first_blob(store: CheckpointStore) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    child = child_of(donor, 2, kept=1)
    d2 = store.save(2, child, share_from=[(1, d1)])
    grandchild = child_of(child, 3, kept=2)  # layer0 came from 1, layer1 from 2
    store.save(3, grandchild, share_from=[(2, d2)])
    from ckptnas.storage._header import read_header

    blobs = {n: s.blob for n, s in read_header(store.path(3)).shared.items()}
    assert blobs == {"layer0.weight": d1, "layer0.bias": d1, "layer1.weight": d2, "layer1.bias": d2}
    assert store.blobs.refcounts() == {d1: 2, d2: 1}
    for name, t in grandchild.items():
        assert torch.equal(store.load(3, [name])[name], t)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the files safetensors opens, in order."""
    names: list[str] = []
    real = _checkpoints.safe_open

    def recording(path: str, *args: Any, **kwargs: Any) -> Any:
        names.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_checkpoints, "safe_open", recording)
    monkeypatch.setattr(_sharing, "safe_open", recording)
    yield names


def test_a_partial_load_opens_only_the_blobs_it_reads(
    store: CheckpointStore, opened: list[str]
) -> None:
    first, second = donor_tensors(0), donor_tensors(1)
    d1, d2 = store.save(1, first), store.save(2, second)
    mixed = {"a": first["layer0.weight"], "b": second["layer0.weight"], "c": torch.ones(3)}
    digest = store.save(3, mixed, share_from=[(1, d1), (2, d2)])
    assert shared_names(store, 3) == {"a", "b"}
    opened.clear()
    store.load(3, ["a"], digest)
    assert set(opened) == {"000003.safetensors", f"{d1}.safetensors"}
    opened.clear()
    store.load(3, ["c"], digest)
    assert set(opened) == {"000003.safetensors"}
    # The blob of 2 may even be gone: reading what is elsewhere never notices.
    store.blobs.path(d2).unlink()
    assert torch.equal(store.load(3, ["a", "c"], digest)["a"], first["layer0.weight"])
    with pytest.raises(CheckpointError, match="missing blob"):
        store.load(3, ["b"], digest)


def flip_first_tensor_byte(path: Path, name: str) -> None:
    """Flip a bit of tensor ``name`` in place, as disk damage would: every link sees it."""
    import json

    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    start = json.loads(raw[8 : 8 + header_len])[name]["data_offsets"][0]
    with path.open("r+b") as f:
        f.seek(8 + header_len + start)
        byte = f.read(1)[0]
        f.seek(8 + header_len + start)
        f.write(bytes([byte ^ 0x10]))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_blob_is_detected(store: CheckpointStore, damage: str) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    d2 = store.save(2, child_of(donor, 2), share_from=[(1, d1)])
    blob = store.blobs.path(d1)
    if damage == "flip":
        flip_first_tensor_byte(blob, "layer1.weight")
    elif damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:-100])
    else:
        blob.unlink()
    assert not store.verify(2, d2)
    with pytest.raises(CheckpointError, match="candidate 2"):
        store.load(2, ["layer1.weight"], d2)
    assert torch.equal(
        store.load(2, ["layer2.bias"], d2)["layer2.bias"], child_of(donor, 2)["layer2.bias"]
    )


def test_a_replaced_donor_file_leaves_its_blob_intact(store: CheckpointStore) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    child = child_of(donor, 2)
    d2 = store.save(2, child, share_from=[(1, d1)])
    store.save(1, donor_tensors(7))  # candidate 1 trained again: a new file under its name
    assert store.verify(2, d2)
    assert torch.equal(
        store.load(2, ["layer0.weight"], d2)["layer0.weight"], donor["layer0.weight"]
    )


def test_without_hard_links_the_tensors_are_stored(
    store: CheckpointStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    monkeypatch.setattr(os, "link", refuse)
    child = child_of(donor, 2)
    digest = store.save(2, child, share_from=[(1, d1)])
    assert shared_names(store, 2) == set()
    assert store.verify(2, digest)
    assert list(store.blobs.root.iterdir()) == []  # no temporary link left behind


def marker_counts(store: CheckpointStore) -> dict[str, int]:
    return {d: n for d, n in store.blobs.refcounts().items() if n}


def scanned_counts(store: CheckpointStore) -> dict[str, int]:
    return {d: len(r) for d, r in scan_references(store.root).items()}


def test_reference_counts_follow_the_checkpoints(
    store: CheckpointStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    donor = donor_tensors(0)
    d1 = store.save(1, donor)
    d2 = store.save(2, child_of(donor, 2), share_from=[(1, d1)])
    store.save(3, child_of(donor, 3), share_from=[(1, d1)])
    store.save(4, child_of(child_of(donor, 2), 4, kept=3), share_from=[(2, d2)])
    assert marker_counts(store) == scanned_counts(store) == {d1: 3, d2: 1}
    # a continued version of 3 keeps sharing what it kept: two files of 3 now refer to d1
    store.save(3, child_of(donor, 3), epochs=4, share_from=[(1, d1)])
    assert marker_counts(store) == scanned_counts(store) == {d1: 4, d2: 1}
    # 4 trained again without sharing: it refers to nothing any more
    store.save(4, donor_tensors(9))
    assert marker_counts(store) == scanned_counts(store) == {d1: 3}
    assert store.blobs.refcounts()[d2] == 0  # kept, referred to by nothing: free to delete

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_checkpoints, "save_file", fail)
    with pytest.raises(OSError):  # a failed rewrite of 4 that would have shared: no change
        store.save(4, child_of(donor, 4), share_from=[(1, d1)])
    with pytest.raises(OSError):  # nor one of 2 that would have stopped sharing
        store.save(2, donor_tensors(5))
    assert marker_counts(store) == scanned_counts(store) == {d1: 3}


def _killed_while_writing(run_dir: str, digest: str) -> None:
    """Save a child that shares from candidate 1, dying once its file is half written."""

    def die(tensors: object, path: str, metadata: object) -> None:
        Path(path).write_bytes(b"\x00" * 100)
        os._exit(9)

    _checkpoints.save_file = die  # type: ignore[assignment]
    store = CheckpointStore(run_dir)
    store.save(2, child_of(donor_tensors(0), 2), share_from=[(1, digest)])


def _spawned(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def test_a_worker_killed_mid_write_leaves_no_dangling_reference(
    store: CheckpointStore, tmp_path: Path
) -> None:
    d1 = store.save(1, donor_tensors(0))
    process = _spawned(_killed_while_writing, str(tmp_path), d1)
    process.join(120)
    assert process.exitcode == 9
    assert not store.exists(2)
    # At most an entry too many (the file it was for never appeared), and the blob is whole.
    assert marker_counts(store) == {d1: 1} and scanned_counts(store) == {}
    digest = store.save(2, child_of(donor_tensors(0), 2), share_from=[(1, d1)])
    assert store.verify(2, digest)
    assert marker_counts(store) == scanned_counts(store) == {d1: 1}


def _save_child_at_once(run_dir: str, child_id: int, digest: str, barrier: Any) -> None:
    """Save child ``child_id`` of candidate 1, sharing from it, when every process is ready."""
    store = CheckpointStore(run_dir)
    tensors = child_of(donor_tensors(0), child_id)
    barrier.wait()
    store.save(child_id, tensors, share_from=[(1, digest)])


def test_two_workers_sharing_one_blob_at_once(store: CheckpointStore, tmp_path: Path) -> None:
    d1 = store.save(1, donor_tensors(0))
    barrier = multiprocessing.get_context("spawn").Barrier(3)
    processes = [_spawned(_save_child_at_once, str(tmp_path), i, d1, barrier) for i in (2, 3, 4)]
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert sorted(p.name for p in store.blobs.root.iterdir()) == [
        f"{d1}.refs",
        f"{d1}.safetensors",
    ]
    assert marker_counts(store) == scanned_counts(store) == {d1: 3}
    for child_id in (2, 3, 4):
        assert shared_names(store, child_id) == {
            f"layer{i}.{k}" for i in (0, 1) for k in ("weight", "bias")
        }
        loaded = store.load(child_id)
        for name, t in child_of(donor_tensors(0), child_id).items():
            assert torch.equal(loaded[name], t)
