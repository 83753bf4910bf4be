"""The scheduler comparison script, in miniature: equal epochs, one table row per scheduler."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from distributed import Client

from ckptnas.storage import load_results

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_schedulers.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_schedulers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_miniature_spends_the_same_epochs_on_each_scheduler(tmp_path: Path, client: Client) -> None:
    script = _script()
    base = script.base_config(12, True, script.HERE / "quickstart.toml")
    for seed in (0, 1):
        for name in script.SCHEDULERS:
            config = script.configure(base, name, seed, True, script.SCHEDULERS)
            assert config.search.scheduler == name
            script.run_one(config, tmp_path / name / str(seed), client)
    for name in script.SCHEDULERS:
        ds = load_results(tmp_path / name / "0")
        trained = int((ds["val_metric"].notnull()).sum())
        assert 10 <= trained <= 12, name
        assert "rung" in ds
    rows = script.table(tmp_path, [0, 1], tuple(script.SCHEDULERS)).splitlines()[2:]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == list(script.SCHEDULERS)
