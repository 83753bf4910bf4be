"""Which tensors of a checkpoint are kept in blobs, and reading them back from there.

:func:`share` is what saving with ``share_from`` does: it finds, among the tensors of the named
checkpoints, those whose SHA-256, dtype and shape equal a tensor being saved, linking a
checkpoint as a blob (:mod:`ckptnas.storage._blobs`) only when one of the tensors it holds
itself is needed. :func:`read_shared` reads a checkpoint's shared tensors from their blobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from ckptnas.errors import CheckpointError
from ckptnas.storage._blobs import BlobStore, Key, locations
from ckptnas.storage._header import SharedTensor, digest_of, read_header

#: safetensors' names of the dtypes a shared tensor may have (others are always stored).
DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _key(tensor: torch.Tensor, sha256: str) -> Key | None:
    dtype = DTYPES.get(tensor.dtype)
    return None if dtype is None else (sha256, dtype, tuple(tensor.shape))


def share(
    blobs: BlobStore,
    tensors: Mapping[str, torch.Tensor],
    hashes: Mapping[str, str],
    share_from: Iterable[tuple[int, str]],
    source: Callable[[int, str], Path | None],
) -> dict[str, SharedTensor]:
    """The tensors to refer to in blobs instead of writing them, by name.

    Parameters
    ----------
    blobs : BlobStore
    tensors, hashes : mapping
        The tensors being saved, and their SHA-256.
    share_from : iterable of (int, str)
        Checkpoints, as (candidate id, digest), to look in.
    source : callable
        ``source(candidate_id, digest)``: that checkpoint's file, or ``None``.
    """
    keys = {name: _key(t, hashes[name]) for name, t in tensors.items()}
    wanted = {k for k in keys.values() if k is not None}
    found: dict[Key, SharedTensor] = {}
    for candidate_id, digest in share_from:
        for key, where in _shareable(blobs, digest, wanted, candidate_id, source).items():
            found.setdefault(key, where)
    return {name: found[k] for name, k in keys.items() if k is not None and k in found}


def _shareable(
    blobs: BlobStore,
    digest: str,
    wanted: set[Key],
    candidate_id: int,
    source: Callable[[int, str], Path | None],
) -> dict[Key, SharedTensor]:
    """Of the tensors ``wanted``, those the checkpoint of ``digest`` lets one refer to."""
    header = blobs.header(digest)
    if header is None:  # no blob yet: the checkpoint's own file says what it holds
        path = source(candidate_id, digest)
        if path is None:
            return {}
        try:
            header = read_header(path)
        except (OSError, ValueError):
            return {}
        if digest_of(header.hashes) != digest:
            return {}
        found = {k: s for k, s in locations(header, digest).items() if k in wanted}
        if not any(s.blob == digest for s in found.values()):
            return found  # all in older blobs: this one is not needed
        linked = blobs.link(path, digest)
        if linked is None:  # no blob: only what it shares itself can be referred to
            return {k: s for k, s in found.items() if s.blob != digest}
        header = linked
    return {k: s for k, s in locations(header, digest).items() if k in wanted}


def read_shared(
    blobs: BlobStore, shared: Mapping[str, SharedTensor], candidate_id: int, what: str
) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint refers to in blobs: each blob opened once, only these read.

    Their hashes are for the caller to check, against the referring checkpoint's header.

    Raises
    ------
    CheckpointError
        If a blob is missing, or holds a tensor of another dtype or shape than recorded.
    SafetensorError, OSError
        If a blob cannot be read.
    """
    tensors: dict[str, torch.Tensor] = {}
    for blob in sorted({s.blob for s in shared.values()}):
        path = blobs.path(blob)
        if not path.is_file():
            raise CheckpointError(
                f"{what} of candidate {candidate_id} refers to a missing blob ({path})"
            )
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name, where in shared.items():
                if where.blob == blob:
                    tensors[name] = f.get_tensor(where.name)
    for name, where in shared.items():
        t = tensors[name]
        if DTYPES.get(t.dtype) != where.dtype or tuple(t.shape) != where.shape:
            raise CheckpointError(
                f"tensor {name!r} of candidate {candidate_id} is not in its blob as recorded"
            )
    return tensors
