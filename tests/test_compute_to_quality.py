"""The end-to-end experiment: its headline figure, and the whole pipeline in miniature."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ckptnas.storage import LineageRegistry, load_topk

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compute_to_quality.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compute_to_quality", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _trace(*points: tuple[int, float]) -> dict[str, object]:
    return {"wall_s": 1.0, "trace": [{"epochs": e, "val": t, "test": t} for e, t in points]}


def test_the_ratio_is_the_baselines_epochs_over_those_needed_to_reach_its_quality() -> None:
    script = _script()
    results = {
        "data": {
            "baseline": {0: _trace((10, 0.5), (100, 0.8)), 1: _trace((10, 0.6), (100, 0.7))},
            # Seed 0 reaches 0.8 after 25 epochs: 100 / 25 = 4x; seed 1 never reaches 0.7: 0.
            "ckptnas": {0: _trace((5, 0.7), (25, 0.81), (60, 0.82)), 1: _trace((50, 0.65))},
            "ckptnas+asha": {0: _trace((50, 0.8)), 1: _trace((20, 0.7))},
        }
    }
    summary = script.summarize(results)["data"]
    assert summary["ckptnas"]["ratios"] == [4.0, 0.0]
    assert summary["ckptnas"]["reached"] == 1
    assert summary["ckptnas+asha"]["ratios"] == [2.0, 5.0]
    assert script.epochs_to_reach(results["data"]["ckptnas"][1]["trace"], 0.7) == math.inf
    median, low, high = script.bootstrap_median([1.0, 2.0, 3.0, 4.0, 5.0])
    assert median == 3.0 and 1.0 <= low < median < high <= 5.0


@pytest.mark.slow
def test_miniature_counts_every_epoch_and_scores_on_held_out_rows(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert table.count("| ckptnas |") == table.count("| ckptnas+asha |") == 5
    assert (tmp_path / "anytime.png").stat().st_size > 10_000
    run = tmp_path / "digits-conv2d" / "ckptnas" / "0"
    trace = json.loads((run / "pipeline.json").read_text(encoding="utf-8"))["trace"]
    with LineageRegistry(run, readonly=True) as registry:
        search_epochs = sum(len(c) for c in registry.curves().values())
    topk = load_topk(run)
    full_epochs = int(topk.n_epochs.sel(init="checkpoint").sum())
    assert trace[-1]["epochs"] == search_epochs + full_epochs
    assert all(a["epochs"] <= b["epochs"] for a, b in itertools.pairwise(trace))
    assert 0 < trace[-1]["test"] <= 1
