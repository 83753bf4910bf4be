"""A miniature of the whole comparison, and the statistics computed from its dataset."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import xarray as xr
from distributed import Client
from scipy.stats import mannwhitneyu

from ckptnas.analysis import COMPARISON_FILE, gather, mann_whitney, policy_label, speedup_summary
from ckptnas.cli import main
from ckptnas.errors import ComparisonError
from ckptnas.storage import load_results

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_policies.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_policies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """An in-process Dask cluster: real scheduler and workers, threads instead of processes."""
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def miniature(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    """The experiment script's --quick grid: two policies, two seeds, six candidates, top-1."""
    out = tmp_path_factory.mktemp("compare")
    script = _script()
    grid = script.load_grid(SCRIPT.parent / "compare_synthetic.toml", quick=True)
    script.compare_grid(grid, out, client, figures=out / "figures")
    return out / "synthetic"


def test_miniature_dataset_dimensions(miniature: Path) -> None:
    ds = xr.load_dataset(miniature / COMPARISON_FILE)
    assert list(ds.policy.values) == ["none", "lcp+freeze"]
    assert list(ds.seed.values) == [0, 1]
    assert ds.sizes["evaluation"] == 6 and ds.sizes["epoch"] == 1
    assert ds.objective.dims == ("policy", "seed", "evaluation")
    assert ds.topk_speedup.dims == ("policy", "seed", "rank")
    assert ds.sizes["rank"] == 1 and list(ds.init.values) == ["scratch", "checkpoint"]
    # The none policy never warm-starts; lcp+freeze does once candidates have finished.
    assert float(ds.warm.sel(policy="none").sum()) == 0
    assert float(ds.warm.sel(policy="lcp+freeze").sum()) > 0
    # Only the policy that was fully trained has top-K numbers.
    assert np.isnan(ds.topk_speedup.sel(policy="none")).all()
    assert np.isfinite(ds.topk_speedup.sel(policy="lcp+freeze")).all()


def test_miniature_writes_table_and_figures(miniature: Path) -> None:
    table = (miniature / "table.txt").read_text()
    assert "lcp+freeze" in table and "speed-up" in table
    for name in ("objectives", "best_so_far", "validation_curves", "topk_speedup"):
        png = miniature / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (miniature.parent / "figures" / f"synthetic_{name}.png").is_file()


def test_mann_whitney_matches_the_runs_results(miniature: Path) -> None:
    ds = xr.load_dataset(miniature / COMPARISON_FILE)
    pooled = {}
    for policy in ("none", "lcp+freeze"):
        runs = [miniature / policy.replace("+", "-") / f"seed{s}" for s in (0, 1)]
        pooled[policy] = np.concatenate([load_results(r).objective.values for r in runs])
    expected = mannwhitneyu(pooled["lcp+freeze"], pooled["none"], alternative="greater")
    test = mann_whitney(ds, "lcp+freeze", "none")
    assert test.p_value == pytest.approx(expected.pvalue)
    assert test.cles == pytest.approx(expected.statistic / 144)
    assert test.rank_biserial == pytest.approx(2 * test.cles - 1)
    assert (test.n_treatment, test.n_control) == (12, 12)


def test_mann_whitney_follows_the_data(miniature: Path) -> None:
    ds = xr.load_dataset(miniature / COMPARISON_FILE)
    before = mann_whitney(ds, "lcp+freeze", "none")
    better = ds.copy(deep=True)
    better["objective"].loc[{"policy": "lcp+freeze"}] += 10.0
    after = mann_whitney(better, "lcp+freeze", "none")
    assert after.cles == 1.0 and after.p_value < 1e-4 < before.p_value
    worse = ds.copy(deep=True)
    worse["objective"].loc[{"policy": "lcp+freeze"}] -= 10.0
    assert mann_whitney(worse, "lcp+freeze", "none").p_value > 0.99


def test_speedup_summary_follows_the_data(miniature: Path) -> None:
    ds = xr.load_dataset(miniature / COMPARISON_FILE)
    summary = speedup_summary(ds, "lcp+freeze")
    assert summary is not None and summary.n == 2
    values = ds.topk_speedup.sel(policy="lcp+freeze").values.ravel()
    assert summary.median == pytest.approx(np.median(values))
    faster = ds.copy(deep=True)
    faster["topk_time_to_target"].loc[{"init": "checkpoint"}] /= 2
    changed = speedup_summary(faster, "lcp+freeze")
    assert changed is not None and changed.median == pytest.approx(2 * summary.median)
    assert speedup_summary(ds, "none") is None


def test_speedup_summary_tolerance_lowers_the_target(miniature: Path) -> None:
    ds = xr.load_dataset(miniature / COMPARISON_FILE)
    # With a target lowered by 10, every run reaches it after its first epoch.
    lowered = speedup_summary(ds, "lcp+freeze", tolerance=10.0)
    first = ds.topk_elapsed.sel(policy="lcp+freeze").isel(topk_epoch=0)
    ratios = (first.sel(init="scratch") / first.sel(init="checkpoint")).values.ravel()
    assert lowered is not None and lowered.median == pytest.approx(np.median(ratios))
    unreachable = ds.copy(deep=True)
    unreachable["topk_target"] += 10.0
    assert speedup_summary(unreachable, "lcp+freeze", tolerance=0.01) is None


def test_gather_rejects_two_runs_of_one_cell(miniature: Path, tmp_path: Path) -> None:
    run = miniature / "none" / "seed0"
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with pytest.raises(ComparisonError, match="both policy 'none', seed 0"):
        gather([run, copy])


def test_gather_rejects_a_directory_without_results(tmp_path: Path) -> None:
    with pytest.raises(ComparisonError, match=r"no results\.nc"):
        gather([tmp_path])


@pytest.mark.parametrize(
    ("policy", "freeze", "label"),
    [("none", True, "none"), ("lcp", False, "lcp"), ("lcp", True, "lcp+freeze")],
)
def test_policy_label(policy: str, freeze: bool, label: str) -> None:
    assert policy_label(policy, freeze) == label


def test_cli_compare_and_report(
    miniature: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [str(p) for p in sorted(miniature.glob("*/seed*"))]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "Mann-Whitney" in out and (tmp_path / "cmp" / COMPARISON_FILE).is_file()
    run = miniature / "lcp-freeze" / "seed0"
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    assert "top" in capsys.readouterr().out
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"lineage_tree.png", "objectives.png", "topk_curves.png"} <= names
