"""Fault injection, round 2: each defect of the second reliability pass, through the CLI.

Every test here drives ``ckptnas`` as a user does (the command line, files on disk) and checks
that nothing a user owns is changed and that one line says what went wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
