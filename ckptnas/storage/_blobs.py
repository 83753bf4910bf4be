"""Blobs: checkpoint files whose tensors other checkpoints refer to, and who refers to them.

With frozen transfer a child holds its donor's transferred tensors unchanged. Its checkpoint
refers to them instead of holding another copy: the donor's checkpoint file is hard-linked as
``checkpoints/blobs/<digest>.safetensors``, named by that checkpoint's digest, and the child's
header says, per shared tensor, which blob holds it under which name (see
:class:`~ckptnas.storage._header.SharedTensor`). A hard link copies no bytes, and it keeps the
blob's bytes even if the donor's own file is later replaced or deleted: a blob is never
rewritten, so what a checkpoint refers to never changes under it.

A blob is linked to a temporary name, its header read through that link (so it is the very
file that becomes the blob) and checked against the digest, then linked under its final name.
That last link fails if the name exists: two workers linking the same blob at once both end up
with the first one, unchanged, and neither is ever replaced.

Who refers to a blob is kept beside it, one empty file per referring checkpoint:
``blobs/<digest>.refs/<checkpoint file name>``. Each checkpoint adds its own entry, so workers
never race on a shared count; the entry is made before the checkpoint that refers to the blob
is renamed into place, and a replaced checkpoint's stale entries are removed after. A process
killed in between leaves an entry too many, never one too few, so a blob with no entries is
referred to by nothing. A blob whose own checkpoint was deleted (``[storage]``) but that others
still refer to takes over that checkpoint's entries, as ``<digest>.blob``: it refers to the same
blobs. Only then, once no entry is left, is a blob deleted (:mod:`ckptnas.storage._deletion`);
:func:`scan_references` recounts from the checkpoints' headers, for a collector or after a
power cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from ckptnas.storage._header import Header, SharedTensor, digest_of, read_header

logger = logging.getLogger(__name__)

#: What identifies a tensor's bytes for sharing: SHA-256, dtype and shape.
Key = tuple[str, str, tuple[int, ...]]


class BlobStore:
    """The blobs of one checkpoint folder, and their reference entries.

    Parameters
    ----------
    checkpoints : Path
        The checkpoint folder; blobs go to its ``blobs/`` subfolder.
    """

    def __init__(self, checkpoints: Path) -> None:
        self.root = checkpoints / "blobs"

    def path(self, digest: str) -> Path:
        """The blob named by a checkpoint digest."""
        return self.root / f"{digest}.safetensors"

    def header(self, digest: str) -> Header | None:
        """The blob's header; ``None`` when it is absent, unreadable or not of that digest."""
        try:
            header = read_header(self.path(digest))
        except (OSError, ValueError):
            return None
        return header if digest_of(header.hashes) == digest else None

    def link(self, source: Path, digest: str) -> Header | None:
        """Make ``source``, a checkpoint of ``digest``, the blob of that digest.

        Returns
        -------
        Header or None
            The blob's header; ``None`` when the file system refuses hard links or ``source``
            is gone or not of ``digest`` (nothing is shared then).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{digest}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(source, tmp)
        except OSError as exc:  # no hard links here (some FUSE mounts), or the source is gone
            logger.debug("cannot link %s as a blob: %s", source, exc)
            return None
        try:
            header = read_header(tmp)  # read through the link: the very file the blob becomes
            if digest_of(header.hashes) != digest:
                return None
            try:
                os.link(tmp, self.path(digest))
            except FileExistsError:  # linked by another worker first: keep that one
                return self.header(digest)
            _fsync_dir(self.root)  # the checkpoint about to refer to it must not outlive it
            return header
        except (OSError, ValueError):
            return None
        finally:
            tmp.unlink(missing_ok=True)

    def _refs(self, digest: str) -> Path:
        return self.root / f"{digest}.refs"

    def add_refs(self, referrer: str, digests: Iterable[str]) -> None:
        """Record that the checkpoint file ``referrer`` refers to these blobs."""
        for digest in digests:
            refs = self._refs(digest)
            refs.mkdir(parents=True, exist_ok=True)
            (refs / referrer).touch()

    def drop_refs(self, referrer: str, digests: Iterable[str]) -> None:
        """Record that ``referrer`` no longer refers to these blobs."""
        for digest in digests:
            (self._refs(digest) / referrer).unlink(missing_ok=True)

    def referred(self, digest: str) -> bool:
        """Whether anything still refers to the blob of ``digest``."""
        try:
            with os.scandir(self._refs(digest)) as entries:
                return any(True for _ in entries)
        except FileNotFoundError:
            return False

    def forget(self, digest: str) -> None:
        """Remove the empty reference folder of a deleted blob."""
        with contextlib.suppress(OSError):  # an entry added meanwhile keeps it
            self._refs(digest).rmdir()

    def refcounts(self) -> dict[str, int]:
        """How many checkpoints refer to each blob, by digest (blobs no one refers to: 0)."""
        if not self.root.is_dir():
            return {}
        counts = {p.name.removesuffix(".safetensors"): 0 for p in self.root.glob("*.safetensors")}
        for refs in self.root.glob("*.refs"):
            counts[refs.name.removesuffix(".refs")] = sum(1 for _ in refs.iterdir())
        return counts


def locations(header: Header, digest: str) -> dict[Key, SharedTensor]:
    """Where each tensor of the blob of ``digest`` can be referred to, by what it is.

    A tensor the blob's checkpoint shares is referred to where that checkpoint found it, so a
    reference is never to another reference; a tensor it holds, in the blob.
    """
    hashes = header.hashes
    found: dict[Key, SharedTensor] = {}
    for name, shared in header.shared.items():
        if name in hashes:
            found.setdefault((hashes[name], shared.dtype, shared.shape), shared)
    for name, entry in header.stored.items():
        if name in hashes:
            found.setdefault(
                (hashes[name], entry.dtype, entry.shape),
                SharedTensor(digest, name, entry.dtype, entry.shape, entry.nbytes),
            )
    return found


def scan_references(checkpoints: Path) -> dict[str, set[str]]:
    """Which checkpoint files refer to each blob, read from their headers.

    What :meth:`BlobStore.refcounts` counts, recomputed from the checkpoints themselves (each
    header is read; the tensors are not).
    """
    refs: dict[str, set[str]] = {}
    for path in checkpoint_files(checkpoints):
        try:
            shared = read_header(path).shared
        except (OSError, ValueError):
            continue
        for entry in shared.values():
            refs.setdefault(entry.blob, set()).add(path.name)
    return refs


def checkpoint_files(checkpoints: Path) -> list[Path]:
    """The checkpoint files of a folder (every version), without training states or blobs."""
    return sorted(
        p
        for p in checkpoints.glob("*.safetensors")
        if not p.name.startswith(".") and not p.name.endswith(".state.safetensors")
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
