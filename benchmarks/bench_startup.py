"""How long ``ckptnas run`` takes to start: from the command to its first candidates on workers.

Timed as a user meets it, in a fresh process: the interpreter, the imports, the embedded
cluster (as many workers as cores), the dataset built on the workers, the search space and the
first candidates submitted, up to the line ``report: file://...`` that ``ckptnas run`` prints
then. The search is the quickstart's, cut to two candidates.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import QUICKSTART, smoke

REPEATS = smoke(3, 1)


def startup_seconds(config: Path, run_dir: Path) -> float:
    """Seconds from launching ``ckptnas run`` to its first line on standard output."""
    command = [sys.executable, "-m", "ckptnas", "run", str(config), "--out", str(run_dir)]
    tic = time.perf_counter()
    with subprocess.Popen(
        [*command, "--max-candidates", "2", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as run:
        assert run.stdout is not None
        first = run.stdout.readline()
        seconds = time.perf_counter() - tic
        run.communicate()
    if run.returncode != 0 or not first.startswith("report:"):
        raise RuntimeError(f"ckptnas run failed (status {run.returncode}): {first!r}")
    return seconds


class RunStartup:
    """What a user waits for before a search starts training (goal: a few seconds)."""

    unit = "seconds"
    timeout = 600
    number = 1
    repeat = 1

    def track_startup_seconds(self) -> float:
        """``ckptnas run`` on the quickstart until its first candidates are submitted (median)."""
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(REPEATS):
                times.append(startup_seconds(QUICKSTART, Path(tmp) / f"run{k}"))
        return statistics.median(times)
