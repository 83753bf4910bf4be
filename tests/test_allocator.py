"""Workers however started: training corrects the allocator setting Dask's nanny gives them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client

from ckptnas import Experiment
from ckptnas.config import Config

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc thresholds are Linux's"
)

#: Minor page faults of 200 allocations of 1 MiB, after ``keep_freed_memory()`` or not.
PROBE = """
import resource, sys
import torch
from ckptnas.runtime import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    torch.empty(2**18).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str, **environ: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environ
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_tensors_are_reused_under_dasks_trim_threshold() -> None:
    _, as_dask_starts_workers = page_faults("leave", MALLOC_TRIM_THRESHOLD_="65536")
    kept, corrected = page_faults("keep", MALLOC_TRIM_THRESHOLD_="65536")
    assert kept
    # Each 1 MiB block is otherwise a fresh mmap: 256 faults at every allocation.
    assert as_dask_starts_workers > 200 * 100
    assert corrected < as_dask_starts_workers / 10


def test_a_threshold_the_user_chose_is_kept() -> None:
    kept, _ = page_faults("keep", MALLOC_TRIM_THRESHOLD_="1048576")
    assert not kept


def test_training_on_a_default_dask_worker_sets_the_allocator(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    """The session's cluster is a plain ``LocalCluster``: its nanny sets Dask's threshold."""
    Experiment(tiny_config.replace("experiment", max_candidates=2), tmp_path, progress=False).run(
        client
    )

    def state() -> tuple[str | None, bool]:
        from ckptnas.runtime import _allocator

        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), _allocator._done

    states = client.run(state)
    assert any(done for _, done in states.values())
    assert all(trim == "65536" for trim, _ in states.values())
