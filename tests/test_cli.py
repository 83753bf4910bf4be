from __future__ import annotations

from pathlib import Path

import pytest

from ckptnas import load_results
from ckptnas.cli import main

TINY_TOML = """
[experiment]
name = "cli"
max_candidates = 6
max_in_flight = 1
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
n_workers = 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def test_run_lineage_and_summary(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", str(config_file), "--out", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines(keepends=True)
    # first where to watch the run: the live page, then the Dask dashboard
    assert lines[0] == f"report: {(out / 'report.html').resolve().as_uri()}\n"
    assert lines[1].startswith("Dask dashboard: http://127.0.0.1:")
    assert 'id="run-state">finished<' in (out / "report.html").read_text()
    printed = "".join(lines[2:])
    assert "top 5 candidates" in printed and "warm-started" in printed
    # summary reads the registry, run printed from results.nc: the same numbers
    assert main(["summary", str(out)]) == 0
    assert capsys.readouterr().out == printed
    assert load_results(out).sizes["candidate"] == 6
    assert (out / "config.toml").is_file()
    assert main(["lineage", str(out)]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert len(tree) == 6 and any(line.startswith("  ") for line in tree)
    assert main(["summary", str(out), "-k", "2"]) == 0
    assert "top 2 candidates" in capsys.readouterr().out
    # a second run into the same directory is refused with one line, exit code 2
    assert main(["run", str(config_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "resume" in err[0]
    # resuming it finds nothing to do, without a cluster: this address answers nobody
    assert main(["resume", str(out), "--scheduler", "tcp://127.0.0.1:9", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{out} is finished: 6 candidates") and "top 5" in printed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[space]\nnum_nodes = 'four'\n", "num_nodes"),
        ("[trainig]\nepochs = 1\n", "unknown table [trainig]"),
        ("[data\n", "not valid TOML"),
        (
            "[data]\nkind = 'netcdf'\npath = 'nowhere.nc'\ninputs = ['x']\ntarget = 'y'\n",
            "nowhere.nc",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ckptnas: error:") and message in err[0]
    assert not (out / "lineage.sqlite").exists()


def test_resume_of_an_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resume", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_bad_flag_value(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(config_file), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_unwritable_run_directory_is_one_line(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["run", str(config_file), "--out", str(blocker / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not writable" in err[0]
    assert blocker.read_text() == "not a directory"


def test_warnings_are_shown_and_info_only_with_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    import ckptnas.cli._inspect

    def logs(args: object) -> int:
        logging.getLogger("ckptnas.runtime._loop").warning("candidate 3: retrying")
        logging.getLogger("ckptnas.runtime._submit").info("the cluster has 4 workers")
        return 0

    monkeypatch.setattr(ckptnas.cli._inspect, "cmd_summary", logs)
    assert main(["summary", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "ckptnas: WARNING: candidate 3: retrying" in err and "cluster" not in err
    assert main(["-v", "summary", str(tmp_path)]) == 0
    assert "ckptnas: INFO: the cluster has 4 workers" in capsys.readouterr().err
    assert not logging.getLogger("ckptnas").handlers  # nothing left configured afterwards


def test_command_groups_list_every_module_that_registers_commands() -> None:
    import importlib
    import pkgutil

    import ckptnas.cli

    modules = (f"ckptnas.cli.{m.name}" for m in pkgutil.iter_modules(ckptnas.cli.__path__))
    registering = {m for m in modules if hasattr(importlib.import_module(m), "register")}
    assert set(ckptnas.cli.COMMAND_GROUPS) == registering
    assert all(m.rsplit(".", 1)[1].startswith("_") for m in registering)


def test_every_command_has_a_handler() -> None:
    import argparse

    from ckptnas.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(commands.choices) == 11
    for name, command in commands.choices.items():
        assert callable(command.get_default("func")), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("ckptnas ")


def test_policy_none_summary_says_none_not_nan(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(TINY_TOML + "[transfer]\npolicy = 'none'\n")
    assert main(["run", str(config_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed
    assert "mean fraction of parameters transferred (warm): none" in printed


def test_every_candidate_failing_is_an_error_with_the_first_reason(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(TINY_TOML.replace("epochs = 1", "epochs = 2\nlearning_rate = 1e30"))
    assert main(["run", str(config_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every candidate failed (6 of 6); candidate 1: diverged" in err[0]


def test_relative_data_path_is_the_config_files_and_predict_writes_netcdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import xarray as xr

    project = tmp_path / "project"
    project.mkdir()
    x = np.random.default_rng(0).normal(size=(120, 3)) * 100 + 1000
    y = 5.0 * x[:, 0] - x[:, 2]
    xr.Dataset({"x": (("row", "feature"), x), "y": (("row",), y)}).to_netcdf(project / "d.nc")
    (project / "exp.toml").write_text(
        "[experiment]\nmax_candidates = 2\n[data]\nkind = 'netcdf'\npath = 'd.nc'\n"
        "inputs = ['x']\ntarget = 'y'\n[space]\nnum_nodes = 1\nunits = [4]\n"
        "[training]\nepochs = 1\n[cluster]\nn_workers = 1\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert main(["run", "project/exp.toml", "--out", "run", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", "run", "project/d.nc", "--candidate", "1", "--out", "p.nc"]) == 0
    assert "wrote p.nc: 120 predictions of candidate 1" in capsys.readouterr().out
    predictions = xr.load_dataset("p.nc")
    assert predictions.prediction.dims == ("row",)
    from ckptnas import load_model

    expected = load_model("run", 1).predict({"x": x})
    assert np.allclose(predictions.prediction.values, expected)
