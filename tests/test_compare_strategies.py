"""The strategy comparison script, in miniature: equal epochs, one table row per search."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from distributed import Client

from ckptnas.storage import load_results

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_strategies.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_strategies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_miniature_spends_the_same_epochs_on_each_search(tmp_path: Path, client: Client) -> None:
    script = _script()
    base = script.base_config(12, quick=True)
    for seed in (0, 1):
        for search in script.SEARCHES:
            config = script.configure(base, search, seed, quick=True)
            script.run_one(config, tmp_path / search / str(seed), client)
    for search in script.SEARCHES:
        ds = load_results(tmp_path / search / "0")
        trained = int((ds["val_metric"].notnull()).sum())
        assert trained <= 12 and trained >= 10, search
    assert "rung" in load_results(tmp_path / "asha" / "0")
    rows = script.table(tmp_path, [0, 1]).splitlines()[2:]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == list(script.SEARCHES)
