"""What ``ckptnas compare`` and ``ckptnas report`` produce: datasets, tables and figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ckptnas.analysis import _plots_compare as compare_plots
from ckptnas.analysis import _plots_pareto as pareto_plots
from ckptnas.analysis import _plots_run as run_plots
from ckptnas.analysis._gather import gather, write_comparison
from ckptnas.analysis._stats import format_table, mann_whitney
from ckptnas.storage import LineageRegistry, RunDir, load_results, load_topk


@dataclass(frozen=True)
class Comparison:
    """A finished comparison: the gathered dataset, its table and the files written."""

    dataset: xr.Dataset
    table: str
    files: tuple[Path, ...]


def compare_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, control: str = "none"
) -> Comparison:
    """Gather runs, write ``comparison.nc`` and the figures, and build the table.

    Parameters
    ----------
    run_dirs : sequence of str or Path
    out_dir : str or Path
        Receives ``comparison.nc`` and the PNG figures.
    control : str
        The policy every other policy is tested against (when present).

    Returns
    -------
    Comparison
    """
    out = Path(out_dir)
    ds = gather(run_dirs)
    files = [write_comparison(ds, out)]
    policies = [str(p) for p in ds.policy.values]
    tests = [mann_whitney(ds, p, control) for p in policies if p != control and control in policies]
    files.append(compare_plots.objective_distributions(ds, tests, out / "objectives.png"))
    files.append(compare_plots.best_so_far(ds, out / "best_so_far.png"))
    files.append(compare_plots.validation_curves(ds, out / "validation_curves.png"))
    if "topk_speedup" in ds:
        files.append(compare_plots.topk_speedups(ds, out / "topk_speedup.png"))
    return Comparison(ds, format_table(ds, control), tuple(files))


def report_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the figures of one run (the lineage tree included) as PNG files.

    Parameters
    ----------
    run_dir : str or Path
    out_dir : str or Path, optional
        Defaults to ``<run_dir>/figures``.

    Returns
    -------
    list of Path
        The files written.
    """
    run = Path(run_dir)
    files_of_run = RunDir(run)
    out = Path(out_dir) if out_dir is not None else files_of_run.figures
    results = load_results(run)
    files = [
        run_plots.run_objectives(results, out / "objectives.png"),
        run_plots.run_curves(results, out / "validation_curves.png"),
    ]
    with LineageRegistry(run, readonly=True) as registry:
        records = registry.candidates()
    title = (
        f"Lineage tree of {run.name}: {sum(r.parent is not None for r in records)} of "
        f"{len(records)} candidates inherited weights"
    )
    files.append(run_plots.lineage_tree(records, out / "lineage_tree.png", title))
    if "pareto" in results:
        files.append(pareto_plots.pareto_front(results, out / "pareto_front.png"))
    if files_of_run.topk_results.is_file():
        topk = load_topk(run)
        files.append(run_plots.topk_run(topk, out / "topk_curves.png"))
    return files
