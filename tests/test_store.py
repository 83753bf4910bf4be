from __future__ import annotations

import errno
import resource
import signal
from pathlib import Path

import pytest
import torch

from ckptnas.errors import CheckpointError
from ckptnas.storage import CheckpointStore


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(8, 4, generator=g),
        "a.bias": torch.randn(8, generator=g),
        "b.weight": torch.randn(3, 8, generator=g).to(torch.bfloat16),
        "steps": torch.arange(5),
    }


def test_round_trip(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    store = CheckpointStore(tmp_path)
    digest = store.save(4, tensors)
    loaded = store.load(4, digest=digest)
    assert loaded.keys() == tensors.keys()
    for name, t in tensors.items():
        assert torch.equal(loaded[name], t) and loaded[name].dtype == t.dtype
    assert store.path(4).name == "000004.safetensors"


def test_partial_load_returns_only_the_names_asked(
    tmp_path: Path, tensors: dict[str, torch.Tensor]
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(1, tensors)
    loaded = store.load(1, names=["a.bias"])
    assert list(loaded) == ["a.bias"]
    assert torch.equal(loaded["a.bias"], tensors["a.bias"])


def test_partial_load_ignores_damage_to_tensors_it_does_not_read(
    tmp_path: Path, tensors: dict[str, torch.Tensor]
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(1, {"first": torch.zeros(4), "second": torch.ones(4)})
    raw = bytearray(store.path(1).read_bytes())
    raw[-1] ^= 0xFF  # the last byte belongs to the last tensor in the file's data section
    store.path(1).write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="does not match its hash"):
        store.load(1)
    # The intact tensor is still readable on its own: partial reads touch only what they read.
    names = [n for n in ("first", "second") if _readable(store, n)]
    assert len(names) == 1


def _readable(store: CheckpointStore, name: str) -> bool:
    try:
        store.load(1, names=[name])
    except CheckpointError:
        return False
    return True


def test_missing_tensor_name(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    store = CheckpointStore(tmp_path)
    store.save(2, tensors)
    with pytest.raises(CheckpointError, match="no tensors"):
        store.load(2, names=["nope"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing"):
        CheckpointStore(tmp_path).load(9)


@pytest.mark.parametrize("keep", [0, 7, 100, -10])
def test_truncated_file_is_detected(
    tmp_path: Path, tensors: dict[str, torch.Tensor], keep: int
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(3, tensors)
    raw = store.path(3).read_bytes()
    store.path(3).write_bytes(raw[:keep])
    with pytest.raises(CheckpointError):
        store.load(3)
    assert not store.verify(3)


def test_flipped_byte_in_data_is_detected(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    store = CheckpointStore(tmp_path)
    digest = store.save(3, tensors)
    raw = bytearray(store.path(3).read_bytes())
    raw[len(raw) - 20] ^= 0x01
    store.path(3).write_bytes(bytes(raw))
    assert not store.verify(3, digest)


def test_digest_mismatch_is_detected(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    store = CheckpointStore(tmp_path)
    store.save(3, tensors)
    other = store.save(4, {k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()})
    with pytest.raises(CheckpointError, match="digest"):
        store.load(3, digest=other)


def test_save_replaces_atomically(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    store = CheckpointStore(tmp_path)
    store.save(5, tensors)
    store.save(5, {"x": torch.ones(2)})
    assert list(store.load(5)) == ["x"]
    assert [p.name for p in store.root.iterdir()] == ["000005.safetensors"]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_full_disk_raises_its_errno_and_leaves_no_file(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    big = {"w": torch.zeros(200_000)}  # 800 kB, over the limit below
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(OSError) as info:
            store.save(1, big)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert info.value.errno == errno.EFBIG
    assert list((tmp_path / "checkpoints").iterdir()) == []
