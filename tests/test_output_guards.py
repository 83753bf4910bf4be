"""What ckptnas writes on request never replaces a file of a run, nor an input it reads.

``--out`` and ``--output`` (predictions, exports, lineage graphs, reports) are refused in one
line, before anything is written, when they name a file of a run directory; ckptnas's own
outputs in the run (``export/``, ``report.html``, ``figures/``, the lineage graph) stay
writable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from helpers import netcdf_search

from ckptnas import RunDirectoryError
from ckptnas.analysis import Lineage, export_lineage
from ckptnas.cli import main
from ckptnas.runtime import predict_file

#: Files every finished search holds, relative to its run directory.
RUN_FILES = [
    ".ckptnas-run",
    "config.toml",
    "lineage.sqlite",
    "results.nc",
    "preprocessing.safetensors",
    "checkpoints/000001.safetensors",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    """A finished two-candidate search on a netCDF table, with the table beside it."""
    root = tmp_path_factory.mktemp("guards")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    return netcdf_search(root, client, x, x.sum(1))


def digests(run_dir: Path) -> dict[str, str]:
    """Every file of a run (and its data) by its SHA-256.

    Without SQLite's journals, which opening the registry to read it may leave behind.
    """
    files = [
        p
        for p in run_dir.parent.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    ]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed (it exits with status 2)."""
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ckptnas: error: "), captured.err
    assert "wrote" not in captured.out
    return err[0]


@pytest.mark.parametrize("name", RUN_FILES)
def test_predict_out_onto_a_file_of_the_run_is_refused(
    run: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(run)
    data = str(run.parent / "data.nc")
    line = refused(
        ["predict", str(run), data, "--candidate", "1", "--out", str(run / name)], capsys
    )
    assert Path(name).name in line and "run" in line
    assert digests(run) == before


def test_predict_out_onto_its_own_input_is_refused(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(run)
    data = str(run.parent / "data.nc")
    line = refused(["predict", str(run), data, "--candidate", "1", "--out", data], capsys)
    assert "data.nc" in line and "input" in line
    assert digests(run) == before


@pytest.mark.parametrize("name", ["lineage.sqlite", "results.nc", "config.toml"])
@pytest.mark.parametrize("fmt", ["graphml", "dot"])
def test_lineage_export_onto_a_file_of_the_run_is_refused(
    run: Path, name: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(run)
    argv = ["lineage", str(run), "--export", fmt, "--output", str(run / name)]
    assert name in refused(argv, capsys)
    assert digests(run) == before


def test_export_into_the_checkpoints_is_refused(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(run)
    argv = ["export", str(run), "--candidate", "1", "--format", "safetensors"]
    refused([*argv, "--out", str(run / "checkpoints")], capsys)
    assert digests(run) == before
    assert not (run / "checkpoints" / "candidate-1.json").exists()


@pytest.mark.parametrize("html", [False, True])
def test_report_into_the_checkpoints_is_refused(
    run: Path, html: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(run)
    argv = ["report", str(run), "--out", str(run / "checkpoints" / "figs")]
    refused([*argv, "--html"] if html else argv, capsys)
    assert digests(run) == before
    assert not (run / "checkpoints" / "figs").exists()


def test_the_library_refuses_too(run: Path, tmp_path: Path) -> None:
    before = digests(run)
    with pytest.raises(RunDirectoryError, match=r"lineage\.sqlite"):
        export_lineage(Lineage.from_run(run), run / "lineage.sqlite", "dot")
    with pytest.raises(RunDirectoryError, match=r"preprocessing\.safetensors"):
        predict_file(run, 1, run.parent / "data.nc", run / "preprocessing.safetensors")
    assert digests(run) == before


def test_the_runs_own_outputs_stay_writable(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(run.parent / "data.nc")
    for argv in (
        ["lineage", str(run), "--export", "dot"],
        ["export", str(run), "--candidate", "1", "--format", "safetensors"],
        ["predict", str(run), data, "--candidate", "1", "--out", str(tmp_path / "p.nc")],
        ["predict", str(run), data, "--candidate", "1", "--out", str(run / "p.nc")],
        ["report", str(run), "--html"],
    ):
        assert main(argv) == 0, capsys.readouterr().err
    assert (run / "lineage.dot").is_file() and (run / "export" / "candidate-1.json").is_file()
    assert (run / "report.html").is_file() and (run / "p.nc").is_file()
