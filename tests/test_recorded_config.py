"""A run's recorded configuration is read one way: by results, the report and resume alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import one_epoch_result

from ckptnas.analysis import RunSnapshot
from ckptnas.config import Config
from ckptnas.errors import RunDirectoryError
from ckptnas.runtime import resume_experiment
from ckptnas.search import SCRATCH
from ckptnas.storage import LineageRegistry, RunDir, build_dataset, recorded_config

DAMAGED = r"lineage\.sqlite is corrupt: its recorded configuration cannot be read"


def _registry_with_config(run_dir: Path, text: str) -> None:
    with LineageRegistry(run_dir) as registry:
        registry.set_meta("config", text)
        registry.record(one_epoch_result(registry.add_candidate((0, 1), SCRATCH, 10)))


def test_damaged_config_stops_results_report_and_resume_alike(tmp_path: Path) -> None:
    _registry_with_config(tmp_path, "[search\nscheduler = ")
    with LineageRegistry(tmp_path) as registry:
        with pytest.raises(RunDirectoryError, match=DAMAGED):
            build_dataset(registry)
        with pytest.raises(RunDirectoryError, match=DAMAGED):
            RunSnapshot.read(registry)
    with pytest.raises(RunDirectoryError, match=DAMAGED):
        resume_experiment(tmp_path, progress=False)


def test_config_with_a_bad_value_names_the_registry(tmp_path: Path) -> None:
    _registry_with_config(tmp_path, '[search]\nscheduler = "sometimes"\n')
    with pytest.raises(RunDirectoryError, match=DAMAGED) as info:
        recorded_config(RunDir(tmp_path))
    assert "\n" not in str(info.value)


def test_rung_and_pareto_come_from_the_recorded_config(tmp_path: Path) -> None:
    config = Config().replace(
        "search",
        scheduler="asha",
        objectives=["val_metric", "n_params"],
        min_epochs=1,
        max_epochs=2,
    )
    _registry_with_config(tmp_path, config.to_toml())
    with LineageRegistry(tmp_path) as registry:
        ds = build_dataset(registry)
    assert {"rung", "epochs_trained", "pareto"} <= set(ds.data_vars)
    assert ds.attrs["objectives"] == "val_metric n_params"


def test_config_toml_is_read_when_the_registry_records_none(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_config(Config().replace("experiment", max_candidates=3))
    LineageRegistry(run).close()
    assert recorded_config(run).experiment.max_candidates == 3
    run.config.write_text("[experiment\n")
    with pytest.raises(RunDirectoryError, match=r"config\.toml is corrupt"):
        recorded_config(run)


def test_nothing_recorded_is_none_only_when_asked(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert recorded_config(run, missing_ok=True) is None
    with pytest.raises(RunDirectoryError, match="holds no recorded run"):
        recorded_config(run)
