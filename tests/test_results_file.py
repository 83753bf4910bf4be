"""results.nc as other tools read it: CF conventions, one time unit, a row per candidate."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pytest
from distributed import Client

from ckptnas import Experiment, load_results
from ckptnas.config import Config
from ckptnas.storage._results import TIME_UNITS


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    from ckptnas.config import config_from_dict
    from tests.conftest import TINY

    run = tmp_path_factory.mktemp("cf") / "run"
    # Every optional variable too: hyperparameters, the Pareto flag, rungs.
    config: Config = (
        config_from_dict(TINY)
        .replace("experiment", max_candidates=4)
        .replace(
            "search",
            hyperparameters={"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}},
            objectives=["val_metric", "n_params"],
            scheduler="asha",
            min_epochs=1,
            reduction_factor=2,
        )
    )
    Experiment(config, run, progress=False).run(client)
    return run / "results.nc"


def test_a_second_reader_finds_cf_attributes_on_every_variable(results: Path) -> None:
    with netCDF4.Dataset(results) as nc:
        assert nc.Conventions == "CF-1.11"
        for name, var in nc.variables.items():
            assert "long_name" in var.ncattrs(), name
            if var.dtype != str and np.issubdtype(var.dtype, np.number):
                assert "units" in var.ncattrs(), name


def test_every_time_has_one_unit_that_decodes(results: Path) -> None:
    with netCDF4.Dataset(results) as nc:
        for name in ("submit_time", "start_time", "end_time"):
            var = nc[name]
            assert var.units == TIME_UNITS
            dates = cftime.num2date(var[:], var.units, var.calendar)
            assert all(2020 < d.year < 2100 for d in dates), name
    ds = load_results(results.parent)
    assert np.issubdtype(ds.start_time.dtype, np.datetime64)
    assert (ds.end_time >= ds.start_time).all()


def test_one_row_per_candidate(results: Path) -> None:
    table = load_results(results.parent, per_candidate=True)
    assert list(table.index) == [1, 2, 3, 4]
    assert {"objective", "parent", "arch_str", "status"} <= set(table.columns)
    assert all("trunk.0=" in text for text in table.arch_str)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:compliance_checker")
def test_a_cf_checker_finds_nothing_to_correct(results: Path, tmp_path: Path) -> None:
    """The IOOS compliance checker, CF 1.11, strict: every check scores full points."""
    runner = pytest.importorskip(
        "compliance_checker.runner", reason="compliance-checker checks CF conventions"
    )
    runner.CheckSuite.load_all_available_checkers()
    report = tmp_path / "cf.json"
    passed, crashed = runner.ComplianceChecker.run_checker(
        str(results), ["cf:1.11"], 0, "strict", output_filename=str(report), output_format="json"
    )
    (scores,) = json.loads(report.read_text()).values()
    problems = [m for p in scores["all_priorities"] for m in p["msgs"]]
    assert passed and not crashed, problems
    assert scores["scored_points"] == scores["possible_points"], problems


def test_ncdump_decodes_every_time(results: Path) -> None:
    """What ``ncdump -t`` shows: calendar dates, not seconds (it writes seconds unpadded)."""
    if shutil.which("ncdump") is None:
        pytest.skip("ncdump is not installed (Debian: apt-get install netcdf-bin)")
    for name in ("submit_time", "start_time", "end_time"):
        shown = subprocess.run(
            ["ncdump", "-t", "-v", name, str(results)], capture_output=True, text=True, check=True
        ).stdout
        dates = re.findall(r'"20\d\d-\d\d-\d\d \d\d:\d\d:\d', shown.split(f"{name} =")[1])
        with netCDF4.Dataset(results) as nc:
            recorded = int(np.ma.count(nc[name][:]))
        assert recorded > 0 and len(dates) == recorded, shown
