"""Ctrl-C and SIGTERM stop a run every time, wherever in the loop they arrive."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed import Client

from ckptnas import Experiment, LineageRegistry
from ckptnas.config import Config
from ckptnas.runtime import interrupts_noted
from ckptnas.runtime._signals import interrupts_deferred
from ckptnas.storage import RunDir


class _SignalWhenCollected:
    """Sends SIGINT to this process from its finalizer, where Python swallows what is raised."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, inside the finalizer


class _InterruptInAFinalizer:
    """A listener that, at the first write of results.nc, drops an object that sends SIGINT."""

    def __init__(self) -> None:
        self.sent = False

    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        pass

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        if running and not self.sent:
            self.sent = True
            _SignalWhenCollected()  # collected at once: its __del__ runs now


def _long(config: Config, candidates: int = 200) -> Config:
    return config.replace("experiment", max_candidates=candidates, flush_interval=0.05)


def _registered(run_dir: Path) -> int:
    """Candidates registered; 0 when the run stopped before its registry had its tables."""
    try:
        with LineageRegistry(run_dir, readonly=True) as registry:
            return len(registry)
    except sqlite3.OperationalError:
        return 0


# The finalizer's KeyboardInterrupt is reported by Python as "Exception ignored": expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_run(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    listener = _InterruptInAFinalizer()
    with pytest.raises(KeyboardInterrupt):
        Experiment(_long(tiny_config), tmp_path, progress=False, listeners=[listener]).run(client)
    assert listener.sent
    assert _registered(tmp_path) < 200


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6, 1.0, 1.5])
def test_ctrl_c_at_any_moment_stops_the_run(
    tiny_config: Config, tmp_path: Path, client: Client, delay: float
) -> None:
    """The signal lands in start-up, submission, waiting, recording or writing results."""
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    try:
        # Noted from before the timer starts, as the command line does from its first line:
        # pytest's own handler would otherwise take a signal that lands before run() begins.
        with pytest.raises(KeyboardInterrupt), interrupts_noted():
            timer.start()
            Experiment(_long(tiny_config), tmp_path, progress=False).run(client)
    finally:
        timer.cancel()
        timer.join()
    assert time.monotonic() - started < delay + 20
    if RunDir(tmp_path).kind().value == "search":
        assert _registered(tmp_path) < 200


CONFIG = """
[experiment]
name = "busy"
max_candidates = 400
flush_interval = 0.2
[data]
n_samples = 400
[space]
num_nodes = 2
units = [8]
[training]
epochs = 1
[cluster]
n_workers = 1
"""


def test_ctrl_c_right_after_a_second_client_was_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(CONFIG)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "ckptnas"]
    first = subprocess.Popen(
        [*command, "run", str(tmp_path / "c.toml"), "--out", str(run_dir), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "results.nc").exists():  # the search is under way
        assert first.poll() is None, first.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run(
        [*command, "resume", str(run_dir)], capture_output=True, text=True, check=False
    )
    assert second.returncode == 2
    assert "in use by another ckptnas process" in second.stderr
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGINT, err.decode()[-2000:]
    assert "ckptnas: interrupted; what was recorded is kept" in err.decode()
    assert _registered(run_dir) < 400


def test_ctrl_c_after_a_batch_cluster_was_made_is_still_an_interrupt(tmp_path: Path) -> None:
    """Making a dask-jobqueue cluster (its import) leaves ckptnas's SIGINT handler in place."""
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue starts batch clusters")
    config = tmp_path / "slurm.toml"
    config.write_text(
        '[cluster]\nkind = "slurm"\nn_workers = 2\n[cluster.jobqueue]\ncores = 1\nmemory = "1GB"\n'
    )
    code = (  # as a run on a batch cluster: the cluster is made inside the run's block
        "import os, signal\n"
        "from ckptnas.config import load_config\n"
        "from ckptnas.runtime import interrupts_noted\n"
        "from ckptnas.runtime._cluster import jobqueue_cluster\n"
        "with interrupts_noted():\n"
        "    try:\n"
        f"        jobqueue_cluster(load_config({str(config)!r}), 'SLURMCluster').close()\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        signal.pause()\n"
        "    except KeyboardInterrupt:\n"
        "        print('interrupted')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "interrupted", done.stderr[-2000:]
    assert done.returncode == 0


def test_a_stop_inside_a_critical_section_is_raised_when_it_ends() -> None:
    """The results write and registry batches finish before a Ctrl-C stops the run."""
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts_noted():
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, and notes the stop without raising
            finished.append("the write")
        finished.append("after the block")
    assert finished == ["the write"]
