"""The registry against its files: lost rows, odd paths, read-only folders, damaged contents."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import recorded_search

import ckptnas
from ckptnas.errors import RunDirectoryError
from ckptnas.storage import CheckpointStore, LineageRegistry, ResultsWriter


def cli(*args: str | Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ckptnas", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ckptnas: error: "), done.stderr
    for word in words:
        assert word in lines[0]


def finished_run(run_dir: Path, n: int = 6) -> Path:
    """A registry of ``n`` candidates with their checkpoints and results.nc, as a run ends."""
    recorded_search(run_dir, n)
    store = CheckpointStore(run_dir)
    for cid in range(1, n + 1):
        store.save(cid, {"w": torch.full((3,), float(cid))})
    with LineageRegistry(run_dir) as registry:
        ResultsWriter(run_dir, registry, 2).flush()
    for sidecar in ("-wal", "-shm"):
        (run_dir / f"lineage.sqlite{sidecar}").unlink(missing_ok=True)
    return run_dir


def forget(run_dir: Path, after: int) -> None:
    with sqlite3.connect(run_dir / "lineage.sqlite") as db:
        db.execute("DELETE FROM epochs WHERE candidate > ?", (after,))
        db.execute("DELETE FROM candidates WHERE id > ?", (after,))


def test_resume_refuses_registry_that_lost_candidates(tmp_path: Path) -> None:
    run = finished_run(tmp_path / "run")
    forget(run, 4)
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    results = (run / "results.nc").read_bytes()
    done = cli("resume", run, "--max-candidates", "8", "--no-progress")
    one_line_error(done, "lineage.sqlite", "candidates 5-6", "checkpoints/", "results.nc")
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before
    assert (run / "results.nc").read_bytes() == results


def test_killed_run_loses_nothing_recorded_without_its_wal(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        "[experiment]\nmax_candidates = 40\nflush_interval = 3600\n[data]\nn_samples = 300\n"
        '[space]\nnum_nodes = 2\nunits = [8]\nshared_inputs = [["drug1", "drug2"]]\n'
        "[training]\nepochs = 1\n[cluster]\nn_workers = 2\n"
    )
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "ckptnas", "run", str(config), "--out", str(run), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline, seen = time.monotonic() + 180, 0
    while seen < 4:  # read as the client's committed state: through the WAL
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
        try:
            with LineageRegistry(run, readonly=True) as registry:
                seen = sum(r.status != "pending" for r in registry)
        except (FileNotFoundError, RunDirectoryError):
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    for sidecar in ("-wal", "-shm"):
        (run / f"lineage.sqlite{sidecar}").unlink(missing_ok=True)
    with LineageRegistry(run, readonly=True) as registry:
        assert sum(r.status != "pending" for r in registry) >= seen


@pytest.mark.parametrize("name", ["a?b", "c#d", "e%41f", "g%h"])
def test_summary_of_run_with_uri_characters_in_its_path(tmp_path: Path, name: str) -> None:
    run = finished_run(tmp_path / name)
    (tmp_path / "eAf").mkdir()  # what an unquoted "e%41f" would name
    done = cli("summary", run)
    assert done.returncode == 0, done.stderr
    assert "candidates: 6" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, "eAf"})


def _unprivileged() -> tuple[str, ...]:
    """A command prefix under which root obeys file permissions, or a reason to skip."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: permissions cannot be tested")
    probe = subprocess.run(["unshare", "-U", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"running as root and user namespaces are refused: {probe.stderr!r}")
    # In a new user namespace root's own uid is unmapped, so it loses CAP_DAC_OVERRIDE on
    # the files and is held to their mode bits, as another user reading the run would be.
    return ("unshare", "-U")


@pytest.mark.parametrize("command", ["summary", "lineage"])
def test_finished_run_reads_from_a_folder_without_write_access(
    tmp_path: Path, command: str
) -> None:
    prefix = _unprivileged()
    run = finished_run(tmp_path / "archive")
    subprocess.run(["chmod", "-R", "a-w", str(run)], check=True)
    try:
        done = cli(command, run, prefix=prefix)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
        assert sorted(p.name for p in run.iterdir()) == sorted(
            ["checkpoints", "lineage.sqlite", "results.nc"]
        )
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(run)], check=True)


DAMAGES = {
    "no meta table": ("DROP TABLE meta", "no meta table"),
    "no candidates table": ("DROP TABLE candidates", "no candidates table"),
    "row of wrong types": ("UPDATE candidates SET n_params = 'abc' WHERE id = 3", "candidate 3"),
    "arch not JSON": ("UPDATE candidates SET arch = '[1, \"x\"' WHERE id = 3", "candidate 3"),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", ["summary", "lineage"])
def test_damaged_registry_is_one_line_naming_it(tmp_path: Path, command: str, damage: str) -> None:
    run = finished_run(tmp_path / "run")
    sql, told = DAMAGES[damage]
    with sqlite3.connect(run / "lineage.sqlite") as db:
        db.execute(sql)
    one_line_error(cli(command, run), str(run / "lineage.sqlite"), "corrupt", told)


def test_damaged_curve_is_one_line_naming_the_registry(tmp_path: Path) -> None:
    run = finished_run(tmp_path / "run")
    with sqlite3.connect(run / "lineage.sqlite") as db:
        db.execute("UPDATE epochs SET val_loss = 'zz' WHERE candidate = 2")
    one_line_error(cli("summary", run), str(run / "lineage.sqlite"), "corrupt", "candidate 2")


SPACES = {
    "without its keys": '{"kind": "dense"}',
    "not an object": "[1, 2]",
    "builtin without inputs": '{"kind": "builtin", "name": "dense", "options": {}}',
    "pickle without bytes": '{"kind": "pickled", "digest": "00"}',
}


@pytest.mark.parametrize("space", SPACES)
def test_damaged_recorded_space_is_told_naming_the_registry(tmp_path: Path, space: str) -> None:
    run = finished_run(tmp_path / "run")
    with sqlite3.connect(run / "lineage.sqlite") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'space'", (SPACES[space],))
    with pytest.raises(RunDirectoryError, match=r"lineage\.sqlite is corrupt.*search space"):
        ckptnas.load_model(run, 3)
    done = cli("resume", run, "--max-candidates", "8", "--no-progress", "--trust-code")
    one_line_error(done, str(run / "lineage.sqlite"), "search space")
