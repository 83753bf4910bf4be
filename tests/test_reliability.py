"""Fault injection, round 2: each defect of the second reliability pass, through the CLI.

Every test here drives ``ckptnas`` as a user does (the command line, files on disk) and checks
that nothing a user owns is changed and that one line says what went wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ckptnas.cli import main

TINY = """
[experiment]
name = "{name}"
max_candidates = 6
max_in_flight = 2
flush_interval = 0.2
[data]
n_samples = 300
[space]
num_nodes = 2
units = [8]
shared_inputs = [["drug1", "drug2"]]
[search]
population_size = 3
sample_size = 2
mutation_bias = 3.0
[training]
epochs = 1
[cluster]
n_workers = 1
"""


def digests(folder: Path) -> dict[str, str]:
    """Every file below a folder and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ckptnas: error:"), err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder, the current directory, with a config.toml of its own."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.toml").write_text("# my own project settings\n")
    (folder / "notes.txt").write_text("keep me\n")
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize("name", ["..", ".", "../../x", "sub/dir"])
def test_experiment_name_is_a_plain_name(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (project / "exp.toml").write_text(TINY.format(name=name))
    before = digests(project.parent)
    assert main(["run", "exp.toml", "--no-progress"]) == 2
    one_error_line(capsys, "[experiment] name", "plain name")
    assert digests(project.parent) == before


def test_out_into_a_folder_that_is_not_a_run_is_refused(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(TINY.format(name="exp"))
    before = digests(project)
    assert main(["run", str(config), "--out", str(project), "--no-progress"]) == 2
    one_error_line(capsys, "not empty", "no ckptnas run")
    assert digests(project) == before


def test_resume_without_its_registry_refuses_and_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(TINY.format(name="exp"))
    run = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run), "--no-progress"]) == 0
    for path in run.glob("lineage.sqlite*"):
        path.unlink()
    before = digests(run)
    capsys.readouterr()
    assert main(["resume", str(run), "--max-candidates", "8", "--no-progress"]) == 2
    one_error_line(capsys, "lineage.sqlite", "nothing was changed")
    assert digests(run) == before


# -- stopping a run from outside ------------------------------------------------------------
LONG = TINY.replace("max_candidates = 6", "max_candidates = 400")


#: Runs its arguments with Ctrl-C restored to its default first, as an interactive shell does
#: (a test runner started in the background may ignore SIGINT, and children inherit that).
DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def start_run(config: Path, out: Path, *flags: str) -> subprocess.Popen[str]:
    """``ckptnas run`` as a terminal or a batch job starts it: a process group of its own."""
    run = ["-m", "ckptnas", "run", str(config), "--out", str(out), "--no-progress", *flags]
    return subprocess.Popen(
        [sys.executable, "-c", DEFAULT_SIGINT, *run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def finished(run: Path) -> int:
    """Candidates the registry has recorded as finished (0 while it does not exist)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{run / 'lineage.sqlite'}?mode=ro", uri=True)
        ) as db:
            return int(
                db.execute("SELECT count(*) FROM candidates WHERE status != 'pending'").fetchone()[
                    0
                ]
            )
    except sqlite3.Error:
        return 0


def has_children(pid: int) -> bool:
    """Whether a process has started any process of its own (the cluster is starting)."""
    tasks = Path(f"/proc/{pid}/task")
    return any((t / "children").read_text().split() for t in tasks.iterdir())


def results_count(run: Path) -> int:
    import xarray as xr

    return int(xr.load_dataset(run / "results.nc").sizes["candidate"])


@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
)
def test_stop_signal_to_the_group_mid_run(
    tmp_path: Path, signum: int, code: int, word: str
) -> None:
    """SIGTERM is how Slurm and PBS end a job; Ctrl-C reaches the whole foreground group."""
    config = tmp_path / "long.toml"
    config.write_text(LONG.format(name="long"))
    run = tmp_path / "run"
    proc = start_run(config, run)
    wait_until(lambda: finished(run) >= 3)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ckptnas: {word}") and f"ckptnas resume {run}" in lines[0]
    # results.nc was written on the way out: it holds every candidate the registry finished
    assert results_count(run) == finished(run) >= 3


def test_ctrl_c_while_the_cluster_starts_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "long.toml"
    config.write_text(LONG.format(name="long"))
    run = tmp_path / "run"
    proc = start_run(config, run)
    wait_until(lambda: has_children(proc.pid), timeout=60)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "nothing was written" in lines[0] and "resume" not in lines[0]
    assert not run.exists()


# -- the scheduler ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def own_process(*command: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_lost_scheduler_is_one_line_and_resume_local_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "long.toml"
    config.write_text(
        LONG.format(name="long").replace("max_candidates = 400", "max_candidates = 60")
    )
    run = tmp_path / "run"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = Path(sys.executable).with_name("dask")
    with (
        own_process(
            str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
        ) as scheduler,
        own_process(str(dask), "worker", address, "--nthreads", "1", "--no-dashboard"),
    ):
        proc = start_run(config, run, "--scheduler", address)
        wait_until(lambda: finished(run) >= 3)
        os.killpg(scheduler.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "lost the Dask cluster" in lines[0] and f"ckptnas resume {run} --local" in lines[0]
    assert main(["resume", str(run), "--local", "--no-progress"]) == 0
    assert results_count(run) == 60


def test_unreachable_scheduler_leaves_nothing_behind(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(TINY.format(name="exp"))
    run = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckptnas",
            "run",
            str(config),
            "--out",
            str(run),
            "--scheduler",
            f"tcp://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], lines
    assert not run.exists()


# -- bad targets and inputs --------------------------------------------------------------------
NETCDF = """
[experiment]
name = "nc"
max_candidates = 2
[data]
kind = "netcdf"
path = "{path}"
inputs = ["x"]
target = "y"
task = "{task}"
[space]
num_nodes = 1
units = [4]
[training]
epochs = 1
[cluster]
n_workers = 1
"""


def netcdf_run(
    tmp_path: Path, variables: dict[str, tuple[tuple[str, ...], object]], task: str = "auto"
) -> tuple[list[str], Path]:
    """``ckptnas run`` on a netCDF file of these variables: exit code 2 expected."""
    import xarray as xr

    path = tmp_path / "data.nc"
    xr.Dataset(variables).to_netcdf(path)
    config = tmp_path / "nc.toml"
    config.write_text(NETCDF.format(path=path, task=task))
    out = tmp_path / "run"
    return [str(config), "--out", str(out), "--no-progress"], out


def features(n: int = 50, k: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, k))


@pytest.mark.parametrize(
    ("target", "task", "needle"),
    [
        (np.r_[np.nan, np.arange(49) % 3].astype(float), "classification", "NaN or infinite"),
        (np.full(50, 7.0), "regression", "target is constant"),
        (np.r_[np.arange(49) % 2, np.inf], "auto", "NaN or infinite"),
    ],
)
def test_bad_target_is_refused_before_training(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: np.ndarray,
    task: str,
    needle: str,
) -> None:
    args, out = netcdf_run(
        tmp_path, {"x": (("sample", "feature"), features()), "y": (("sample",), target)}, task
    )
    assert main(["run", *args]) == 2
    one_error_line(capsys, "data:", needle)
    assert not out.exists()


def test_too_few_rows_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args, out = netcdf_run(
        tmp_path,
        {"x": (("sample", "feature"), features(3)), "y": (("sample",), [1.0, 2.0, 3.0])},
    )
    assert main(["run", *args]) == 2
    one_error_line(capsys, "3 samples", "each split needs at least 2")
    assert not out.exists()


@pytest.mark.parametrize(
    ("x_dims", "needle"),
    [
        (("row", "feature"), "not the sample dimension 'sample'"),
        (("sample", "feature", "extra"), "needs (sample, feature) inputs"),
    ],
)
def test_inputs_must_share_the_targets_sample_dimension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], x_dims: tuple[str, ...], needle: str
) -> None:
    x = np.zeros((50, 3, 2)[: len(x_dims)])
    args, out = netcdf_run(tmp_path, {"x": (x_dims, x), "y": (("sample",), np.arange(50.0))})
    assert main(["run", *args]) == 2
    one_error_line(capsys, "'x'", needle)
    assert not out.exists()


def test_huge_targets_and_transposed_inputs_train(tmp_path: Path) -> None:
    """Samples found by name in ``x(feature, sample)``; a target near 1e30 is standardised."""
    x = features(200)
    y = 1e30 * (x @ np.array([1.0, -2.0, 0.5]) + 10.0)
    args, out = netcdf_run(
        tmp_path, {"x": (("feature", "sample"), x.T), "y": (("sample",), y)}, "regression"
    )
    assert main(["run", *args]) == 0
    import xarray as xr

    ds = xr.load_dataset(out / "results.nc")
    assert set(ds.status.values) == {"ok"}
    assert np.isfinite(ds.objective.values).all()


# -- a damaged registry ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished six-candidate run, copied by the tests that damage it."""
    folder = tmp_path_factory.mktemp("finished")
    config = folder / "exp.toml"
    config.write_text(TINY.format(name="exp").replace("max_in_flight = 2", "max_in_flight = 1"))
    assert main(["run", str(config), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run"


def damaged(finished_run: Path, tmp_path: Path, *statements: str) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with contextlib.closing(sqlite3.connect(run / "lineage.sqlite")) as db, db:
        for statement in statements:
            db.execute(statement)
    return run


def warm_child(run: Path) -> tuple[int, int]:
    """A candidate with a parent, and that parent."""
    with contextlib.closing(sqlite3.connect(run / "lineage.sqlite")) as db:
        child, parent = db.execute(
            "SELECT id, parent FROM candidates WHERE parent IS NOT NULL ORDER BY id"
        ).fetchone()
    return int(child), int(parent)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [["--candidate", "{child}"], []])
def test_lineage_cycle_is_reported_not_walked_forever(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    child, parent = warm_child(finished_run)
    capsys.readouterr()
    run = damaged(
        finished_run, tmp_path, f"UPDATE candidates SET parent = {child} WHERE id = {parent}"
    )
    assert main(["lineage", str(run), *(a.format(child=child) for a in args)]) == 2
    one_error_line(capsys, "lineage.sqlite is corrupt", "loop")


@pytest.mark.parametrize(
    ("statement", "command"),
    [
        ("UPDATE candidates SET arch = 'not json' WHERE id = 2", ["lineage"]),
        ("UPDATE meta SET value = '[broken' WHERE key = 'config'", ["resume"]),
    ],
)
def test_corrupt_rows_are_named(
    finished_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    statement: str,
    command: list[str],
) -> None:
    run = damaged(finished_run, tmp_path, statement)
    capsys.readouterr()
    assert main([*command, str(run)]) == 2
    one_error_line(capsys, "lineage.sqlite is corrupt")


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """The file cannot be written, by root either (``chattr +i``), for the block."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available here: cannot make a file read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_registry_is_refused_before_any_change(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = damaged(finished_run, tmp_path)
    before = digests(run)
    capsys.readouterr()
    with immutable(run / "lineage.sqlite"):
        assert main(["resume", str(run), "--max-candidates", "12", "--no-progress"]) == 2
    one_error_line(capsys, str(run / "lineage.sqlite"), "not writable")
    assert digests(run) == before  # config.toml kept its max_candidates, no -shm was left


# -- shared machines ---------------------------------------------------------------------------
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_checkpoints_honour_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(TINY.format(name="exp").replace("max_candidates = 6", "max_candidates = 2"))
    previous = os.umask(mask)
    try:
        assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    finally:
        os.umask(previous)
    files = [*(tmp_path / "run" / "checkpoints").iterdir(), tmp_path / "run" / "results.nc"]
    assert files and {f.stat().st_mode & 0o777 for f in files} == {mode}


def test_embedded_cluster_admits_only_its_own_client() -> None:
    """Another local user can reach 127.0.0.1, but not submit code to the run's workers."""
    from distributed import Client
    from distributed.security import Security

    from ckptnas.config import Config
    from ckptnas.runtime import connect

    with connect(Config().replace("cluster", n_workers=1)) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert client.submit(abs, -3).result() == 3
        with pytest.raises(OSError):  # plain TCP
            Client(address.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises(OSError):  # TLS with a certificate of its own making
            Client(address, security=Security.temporary(), timeout="3s")
