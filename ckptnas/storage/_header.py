"""A checkpoint file's header, read without torch: its tensors, hashes and shared tensors.

A safetensors file starts with the length of its JSON header (8 bytes, little-endian), then the
header: per stored tensor its dtype, shape and byte range, and ``__metadata__``, text only. The
checkpoint store keeps there the SHA-256 of every tensor (``sha256:<name>``) and, for tensors
another file holds, where they are (``ckptnas:shared``, see :class:`SharedTensor`). Reading the
header alone is what ``ckptnas summary`` needs, on a login node without torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: The metadata key of a tensor's SHA-256: ``sha256:<name>``.
HASH_PREFIX = "sha256:"
#: The metadata key of the tensors kept in blobs (JSON: name -> :class:`SharedTensor`).
SHARED = "ckptnas:shared"
#: safetensors refuses headers past 100 MB; so does this reader, before allocating them.
_MAX_HEADER = 100_000_000


def digest_of(hashes: Mapping[str, str]) -> str:
    """One hash over a checkpoint's per-tensor hashes, independent of their order."""
    return hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()


@dataclass(frozen=True)
class TensorEntry:
    """What identifies a tensor's bytes: their hash, and how they are read back."""

    sha256: str
    #: safetensors' dtype name (``F32``, ``BF16``, ...).
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class SharedTensor:
    """A tensor a checkpoint refers to instead of holding it: where it is, what it is."""

    #: The digest that names the blob holding it (``blobs/<digest>.safetensors``).
    blob: str
    #: Its name in the blob.
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    def to_json(self) -> dict[str, Any]:
        """The entry as ``ckptnas:shared`` stores it."""
        return asdict(self) | {"shape": list(self.shape)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> SharedTensor:
        """The entry ``ckptnas:shared`` stores; ``ValueError`` when it is malformed."""
        try:
            return cls(
                blob=str(value["blob"]),
                name=str(value["name"]),
                dtype=str(value["dtype"]),
                shape=tuple(int(d) for d in value["shape"]),
                nbytes=int(value["nbytes"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed shared tensor entry {value!r}") from exc


@dataclass(frozen=True)
class Header:
    """A checkpoint file's header.

    Attributes
    ----------
    stored : dict of str to TensorEntry
        The tensors in the file itself.
    metadata : dict of str to str
        The header's ``__metadata__``.
    """

    stored: dict[str, TensorEntry]
    metadata: dict[str, str]

    @property
    def hashes(self) -> dict[str, str]:
        """Every tensor's SHA-256, those the file holds and those it shares."""
        return {
            k.removeprefix(HASH_PREFIX): v
            for k, v in self.metadata.items()
            if k.startswith(HASH_PREFIX)
        }

    @property
    def shared(self) -> dict[str, SharedTensor]:
        """The tensors held in blobs, by name; ``ValueError`` when the entry is malformed."""
        return shared_of(self.metadata)


def shared_of(metadata: Mapping[str, str]) -> dict[str, SharedTensor]:
    """The ``ckptnas:shared`` entries of a header's metadata (none when absent)."""
    text = metadata.get(SHARED)
    if not text:
        return {}
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed {SHARED} metadata: {exc}") from None
    if not isinstance(entries, dict):
        raise ValueError(f"malformed {SHARED} metadata")
    return {str(name): SharedTensor.from_json(value) for name, value in entries.items()}


def read_header(path: Path) -> Header:
    """Read a safetensors file's header only.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is too short or its header is not what safetensors writes.
    """
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size <= _MAX_HEADER:
            raise ValueError(f"{path.name}: header length {size} is out of range")
        raw = f.read(size)
    if len(raw) != size:
        raise ValueError(f"{path.name}: the header is cut short")
    try:
        header = json.loads(raw)
        metadata = {str(k): str(v) for k, v in (header.pop("__metadata__", None) or {}).items()}
        hashes = {
            k.removeprefix(HASH_PREFIX): v for k, v in metadata.items() if k.startswith(HASH_PREFIX)
        }
        stored = {
            name: TensorEntry(
                sha256=hashes.get(name, ""),
                dtype=str(info["dtype"]),
                shape=tuple(int(d) for d in info["shape"]),
                nbytes=int(info["data_offsets"][1]) - int(info["data_offsets"][0]),
            )
            for name, info in header.items()
        }
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path.name}: malformed header ({exc})") from None
    return Header(stored, metadata)
