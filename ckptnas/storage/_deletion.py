"""Deleting a candidate's checkpoints, and the blobs no kept checkpoint refers to any more.

What to delete is the run's decision (``[storage]``, :mod:`ckptnas.runtime._retention`); this
module deletes and counts what that freed. The registry records a deletion before the files go
(:meth:`~ckptnas.storage.LineageRegistry.mark_deleted`): a client killed in between leaves files
of a candidate recorded as deleted, which the resumed run deletes again, never a candidate the
registry offers as a donor whose files are gone.

Frozen tensors are shared through blobs (:mod:`ckptnas.storage._blobs`), so deleting a file
does not always free its bytes. A donor's file is also its blob, under a second name: deleting
the file leaves the blob, which now refers in its own name to what the file referred to, for
as long as a kept checkpoint refers to it. A blob is deleted once no entry refers to it and no
checkpoint file is the same file (its link count is 1); the blobs it referred to are then
looked at in turn. As everywhere with blobs, an entry is added before what it protects can
lose its last name and dropped only after the name that referred is gone, so a killed client
leaves a blob kept too long, never one deleted under a checkpoint that refers to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ckptnas.storage._blobs import BlobStore
from ckptnas.storage._checkpoints import CheckpointStore
from ckptnas.storage._header import digest_of, read_header


def blob_referrer(digest: str) -> str:
    """The reference entry of a blob whose own checkpoint is deleted: ``<digest>.blob``."""
    return f"{digest}.blob"


def delete_checkpoints(store: CheckpointStore, candidate_id: int, epochs: Iterable[int]) -> int:
    """Delete every file of a candidate's checkpoints; returns the bytes that freed.

    Parameters
    ----------
    store : CheckpointStore
        The run's store.
    candidate_id : int
    epochs : iterable of int
        The epochs of the versions it may have been continued to (successive halving); the
        file of its first training is always deleted. A version that does not exist is skipped.

    Returns
    -------
    int
        Bytes whose last name went: a file still linked as a blob frees nothing until the
        blob goes too.
    """
    freed = 0
    touched: set[str] = set()
    for path in [store.path(candidate_id), *(store.path(candidate_id, e) for e in epochs)]:
        bytes_freed, blobs = _delete_version(store, candidate_id, path)
        freed += bytes_freed
        touched |= blobs
    return freed + collect_blobs(store.blobs, touched)


def _delete_version(store: CheckpointStore, candidate_id: int, path: Path) -> tuple[int, set[str]]:
    """Delete one checkpoint file and its training state; returns bytes freed, blobs touched."""
    try:
        header = read_header(path)
    except FileNotFoundError:
        return 0, set()
    except (OSError, ValueError):  # damaged: its file goes, what it referred to is not known
        return unlink(path), set()
    digest = digest_of(header.hashes)
    try:
        shared = {s.blob for s in header.shared.values()}
    except ValueError:
        shared = set()
    blob = store.blobs.path(digest)
    if _same_file(blob, path):  # the blob outlives this name and refers to what it referred to
        store.blobs.add_refs(blob_referrer(digest), shared)
    freed = unlink(store.state_path(candidate_id, digest)) + unlink(path)
    store.blobs.drop_refs(path.name, shared)
    return freed, shared | {digest}


def collect_blobs(blobs: BlobStore, digests: Iterable[str]) -> int:
    """Delete those of these blobs that nothing refers to, and so on down; returns bytes freed.

    A blob is deleted when no entry refers to it and it is no checkpoint's file as well (a
    kept donor's file and its blob are one file: deleting the blob would free nothing, and
    the next child of that donor links it again).
    """
    freed = 0
    todo = list(digests)
    while todo:
        digest = todo.pop()
        path = blobs.path(digest)
        try:
            if path.stat().st_nlink != 1 or blobs.referred(digest):
                continue
            shared = {s.blob for s in read_header(path).shared.values()}
        except FileNotFoundError:
            continue
        except (OSError, ValueError):  # damaged: it goes, what it referred to stays
            shared = set()
        freed += unlink(path)
        blobs.drop_refs(blob_referrer(digest), shared)
        blobs.forget(digest)
        todo.extend(shared)
    return freed


def unlink(path: Path) -> int:
    """Remove one name of a file; returns its size if that was its last name, else 0."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    path.unlink(missing_ok=True)
    return st.st_size if st.st_nlink == 1 else 0


def written_bytes(
    store: CheckpointStore, candidate_id: int, epochs: int | None, digest: str
) -> int:
    """The bytes a finished task wrote: its checkpoint version and its training state, if any.

    Two ``stat`` calls, whatever the number of candidates: what the run adds to its disk use
    as each candidate finishes, without walking the folder.
    """
    total = 0
    for path in (store.path(candidate_id, epochs), store.state_path(candidate_id, digest)):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False
