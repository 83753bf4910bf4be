"""glibc's allocator as training wants it, set by the worker process itself.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``, so that dataframe
workloads hand freed memory back to the OS. Setting any of glibc's malloc thresholds also
switches off its dynamic mmap threshold, which otherwise grows to the size of the blocks a
program frees (up to 32 MiB on 64-bit): with it pinned at 128 KiB, every tensor of every batch
larger than that is a fresh ``mmap``, page-faulted in and unmapped again. Measured on the
development machine, 200 allocations of 1 MiB in a torch process: 51,427 minor page faults with
Dask's setting, 2,329 with glibc's defaults, 1,307 after :func:`keep_freed_memory`
(``tests/test_allocator.py``; ``benchmarks/bench_overhead.py: PlainClusterEpochs`` measures
what it does to epochs).

The embedded cluster already starts its workers without the variable, but workers started by
``dask worker``, a user's ``LocalCluster`` or dask-jobqueue get it; so each training task's
set-up corrects the allocator of the process it runs in.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Where glibc's dynamic threshold ends up on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks up to
#: this size are served from the heap and reused.
MMAP_THRESHOLD = 32 * 2**20
#: glibc's dynamic rule keeps the trim threshold at twice the mmap threshold.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

#: The value Dask's nanny sets; any other value was chosen by the user and is kept.
_DASK_DEFAULT = "65536"

_done = False


def keep_freed_memory() -> bool:
    """Let this process reuse freed blocks of up to 32 MiB instead of unmapping them.

    Done once per process, on Linux with glibc, unless the user set ``MALLOC_TRIM_THRESHOLD_``
    or ``MALLOC_MMAP_THRESHOLD_`` to a value of their own.

    Returns
    -------
    bool
        Whether the thresholds are set (now or by an earlier call).
    """
    global _done  # noqa: PLW0603  # once per process: the setting is process-wide
    if _done:
        return True
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if trim not in (None, _DASK_DEFAULT):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another C library: it has no such thresholds
        return False
    if not (
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    ):
        logger.debug("mallopt refused the thresholds; the allocator keeps its settings")
        return False
    _done = True
    return True
