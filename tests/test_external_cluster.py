"""A cluster the user starts with ``dask scheduler`` and ``dask worker`` gives the same search."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ckptnas.cli import main
from ckptnas.storage import LineageRegistry

CONFIG = """
[experiment]
name = "external"
seed = 5
max_candidates = 6
max_in_flight = 1
[data]
n_samples = 300
[space]
num_nodes = 2
units = [8, 16]
shared_inputs = [["drug1", "drug2"]]
[search]
population_size = 3
sample_size = 2
[training]
epochs = 1
[cluster]
n_workers = 1
"""


def dask_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and one ``dask worker --nthreads 1``, as the docs start them."""
    scheduler_file = tmp_path / "scheduler.json"
    started = [
        dask_cli(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = re.search(r'"address": "([^"]+)"', scheduler_file.read_text())
        assert address is not None
        started.append(dask_cli("worker", address[1], "--nthreads", "1", "--no-dashboard"))
        yield address[1]
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)


def candidates(run_dir: Path) -> list[tuple[object, ...]]:
    with LineageRegistry(run_dir, readonly=True) as registry:
        return [(r.id, r.arch, r.parent, r.transferred, r.objective) for r in registry]


def test_dask_worker_processes_give_the_candidates_of_the_embedded_cluster(
    scheduler: str, tmp_path: Path
) -> None:
    config = tmp_path / "external.toml"
    config.write_text(CONFIG)
    embedded, external = tmp_path / "embedded", tmp_path / "external"
    assert main(["run", str(config), "--out", str(embedded), "--no-progress"]) == 0
    assert (
        main(
            ["run", str(config), "--out", str(external), "--scheduler", scheduler, "--no-progress"]
        )
        == 0
    )
    ours, theirs = candidates(embedded), candidates(external)
    assert [c[:4] for c in ours] == [c[:4] for c in theirs]
    np.testing.assert_allclose([c[4] for c in ours], [c[4] for c in theirs], rtol=1e-6)
    assert any(parent is not None for _, _, parent, _, _ in ours)  # warm starts were compared
