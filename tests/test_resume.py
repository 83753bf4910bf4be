"""The client killed at several moments, then resumed: every candidate exactly once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from distributed import Client

from ckptnas import Experiment, LineageRegistry, load_results
from ckptnas.config import Config
from ckptnas.storage import RunDir

CONFIG = """
[experiment]
name = "resume"
max_candidates = 12
flush_interval = 0.2
[data]
n_samples = 600
[space]
num_nodes = 3
units = [16, 32]
shared_inputs = [["drug1", "drug2"]]
[search]
population_size = 4
sample_size = 2
mutation_bias = 2.0
[training]
epochs = 2
[cluster]
n_workers = 2
"""


def ckptnas(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ckptnas", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finished(run_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{run_dir / 'lineage.sqlite'}?mode=ro", uri=True) as db:
            return int(
                db.execute("SELECT count(*) FROM candidates WHERE status != 'pending'").fetchone()[
                    0
                ]
            )
    except sqlite3.Error:
        return -1


def kill_when(process: subprocess.Popen[bytes], run_dir: Path, n_finished: int) -> None:
    deadline = time.monotonic() + 120
    while finished(run_dir) < n_finished:
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def check_readable(run_dir: Path) -> None:
    with LineageRegistry(run_dir, readonly=True) as reg:
        ids = [r.id for r in reg]
    assert ids == list(range(1, len(ids) + 1))
    if (run_dir / "results.nc").exists():
        xr.load_dataset(run_dir / "results.nc", engine="netcdf4")


#: Successive halving on top: kills also land while promoted candidates are being continued.
ASHA = """
scheduler = "asha"
min_epochs = 1
max_epochs = 4
reduction_factor = 2
"""

#: The other schedulers that continue candidates, killed the same way.
SCHEDULERS = {
    "none": "",
    "asha": ASHA,
    "hyperband": ASHA.replace('"asha"', '"hyperband"'),
    "median": """
scheduler = "median"
max_epochs = 4
scheduler_options = {grace_epochs = 1, step_epochs = 1, min_candidates = 2}
""",
}

#: The epochs a candidate may have trained, with each scheduler.
EPOCHS = {"asha": {1, 2, 4}, "hyperband": {1, 2, 4}, "median": {1, 2, 3, 4}}


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_client_killed_three_times_then_resumed(tmp_path: Path, scheduler: str) -> None:
    config = tmp_path / "c.toml"
    text = CONFIG.replace("mutation_bias = 2.0\n", "mutation_bias = 2.0\n" + SCHEDULERS[scheduler])
    config.write_text(text)
    run_dir = tmp_path / "run"
    kill_when(ckptnas("run", str(config), "--out", str(run_dir)), run_dir, 0)
    check_readable(run_dir)
    for n in (3, 7):
        kill_when(ckptnas("resume", str(run_dir)), run_dir, n)
        check_readable(run_dir)
    final = ckptnas("resume", str(run_dir))
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-3000:]
    ds = load_results(run_dir)
    assert list(ds.candidate.values) == list(range(1, 13))
    assert set(ds.status.values) == {"ok"}
    assert len({tuple(a) for a in ds.arch.values}) == 12
    with LineageRegistry(run_dir, readonly=True) as reg:
        records = {r.id: r for r in reg}
        curves = reg.curves()
    for r in records.values():
        if r.parent is not None:
            assert records[r.parent].status == "ok" and r.parent != r.id
        assert r.target_epochs == len(curves[r.id])  # nothing left half-continued
    if scheduler != "none":
        assert set(ds["epochs_trained"].values) <= EPOCHS[scheduler]
        assert (ds["epochs_trained"] > 1).any()
    assert "top 5 candidates" in out.decode()


def test_second_client_on_a_busy_run_directory_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("max_candidates = 12", "max_candidates = 2"))
    run_dir = tmp_path / "run"
    first = ckptnas("run", str(config), "--out", str(run_dir))
    assert first.wait(timeout=300) == 0
    with RunDir(run_dir).lock():  # as if a first client were still running
        second = ckptnas("resume", str(run_dir), "--max-candidates", "4")
        _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert err.decode().strip() == (
        f"ckptnas: error: run directory '{run_dir}' is in use by another ckptnas process"
    )
    assert load_results(run_dir).sizes["candidate"] == 2


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_full_disk_stops_the_run_with_one_line(tmp_path: Path) -> None:
    import resource

    config = tmp_path / "c.toml"
    # Wide layers: the first checkpoint is larger than the file-size limit below.
    config.write_text(CONFIG.replace("units = [16, 32]", "units = [512]"))
    run_dir = tmp_path / "run"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckptnas",
            "run",
            str(config),
            "--out",
            str(run_dir),
            "--no-progress",
        ],
        capture_output=True,
        preexec_fn=limit,
        timeout=300,
        check=False,
    )
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2
    assert err[-1].startswith("ckptnas: error: cannot write to run directory")
    assert "File too large" in err[-1]
    assert err[-1].endswith(f"what was recorded is kept; continue with: ckptnas resume {run_dir}")
    # Dask's worker logs the failed task; ckptnas itself prints no traceback
    assert "Traceback (most recent call last)" not in proc.stderr.decode()
    check_readable(run_dir)


# Runs `ckptnas run` with every write of results.nc past its first few kilobytes refused by
# the kernel (RLIMIT_FSIZE, lowered around that write alone), as a disk that fills up would.
_RESULTS_WRITE_REFUSED = """
import resource, signal, sys
from ckptnas.cli import main
from ckptnas.storage import _results

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
write = _results.write_dataset

def refused(ds, path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        write(ds, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

_results.write_dataset = refused
sys.exit(main(sys.argv[1:]))
"""


def test_a_results_file_that_cannot_be_written_stops_the_run_with_one_line(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    run_dir = tmp_path / "run"
    args = ["run", str(config), "--out", str(run_dir), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-c", _RESULTS_WRITE_REFUSED, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "HDF error" not in proc.stderr, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith(f"ckptnas: error: cannot write {run_dir / 'results.nc'}: ")
    assert "File too large" in err[-1]
    assert err[-1].endswith(f"continue with: ckptnas resume {run_dir}")
    resumed = ckptnas("resume", str(run_dir))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read() if resumed.stderr else ""
    assert load_results(run_dir).sizes["candidate"] == 12


def test_a_run_stopped_before_it_described_itself_resumes_from_its_config(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    """Killed after lineage.sqlite was made, before the space was recorded: nothing is lost."""
    files = RunDir(tmp_path)
    files.create()
    files.write_config(tiny_config)
    with LineageRegistry(tmp_path):
        pass
    ds = Experiment(tiny_config, tmp_path, progress=False, resume=True).run(client)
    assert ds.sizes["candidate"] == tiny_config.experiment.max_candidates
