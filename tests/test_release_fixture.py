"""Run directories written by ckptnas 0.1.0 keep opening, resuming and reporting.

``tests/fixtures/release-0.1.0`` was written by ``ckptnas run tests/fixtures/release-0.1.0.toml``
with the 0.1.0 release: a conv2d search under ASHA with two objectives, whose space that release
recorded as a cloudpickle naming its private modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from distributed import Client

import ckptnas
from ckptnas.cli import main
from ckptnas.runtime import Experiment
from ckptnas.storage import RunDir, recorded_config

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A writable copy of the 0.1.0 run directory."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "release-0.1.0"))


def test_old_run_opens_in_xarray_with_its_derived_variables(old_run: Path) -> None:
    ds = ckptnas.load_results(old_run)
    assert ds.sizes["candidate"] == 6
    assert {"rung", "pareto"} <= set(ds.data_vars)
    assert set(ds["status"].values) == {"ok"}


def test_old_run_summarises_and_reports(old_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(old_run)]) == 0
    assert "candidates: 6 (6 ok)" in capsys.readouterr().out
    assert main(["report", str(old_run), "--html"]) == 0
    assert (old_run / "report.html").stat().st_size > 0


def test_old_run_loads_its_best_model(old_run: Path) -> None:
    model = ckptnas.load_model(old_run, 5)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_old_run_resumes_to_a_larger_budget(old_run: Path, client: Client) -> None:
    config = recorded_config(RunDir(old_run)).replace("experiment", max_candidates=8)
    ds = Experiment(config, old_run, progress=False, resume=True).run(client)
    assert ds.sizes["candidate"] == 8
    assert (ds["status"] == "ok").sum() >= 7
