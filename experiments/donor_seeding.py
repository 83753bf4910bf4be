"""A second search warm-started from the quickstart's finished run: seeded, unseeded, fresh.

Runs ``experiments/quickstart.toml`` to completion (the donor run), then for each seed a short
second search (``--candidates``, by default one first population) three ways on one
LocalCluster: fresh (no ``[transfer] donor_runs``), with the quickstart run as a donor run but
``seed_population = false`` (a random first population), and with it seeded (the default).
For each it prints, over the first population (the first ``population_size`` candidates): how
many were warm-started, their mean share of parameters transferred, and their mean validation
metric (R²) after the first epoch, read from ``results.nc``.

    python experiments/donor_seeding.py                      # ~1 min on 2 cores
    python experiments/donor_seeding.py --out /tmp/seeding --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ckptnas.config import Config, load_config
from ckptnas.runtime import Experiment, connect
from ckptnas.storage import load_results

HERE = Path(__file__).resolve().parent

#: The second searches: name, donor runs used, first population seeded from them.
KINDS = (("fresh", False, False), ("donors, random", True, False), ("donors, seeded", True, True))


def second_search(donor: Path, seed: int, candidates: int, donors: bool, seeded: bool) -> Config:
    """The quickstart search, short, with or without the donor run."""
    config = load_config(HERE / "quickstart.toml")
    config = config.replace("experiment", seed=seed, max_candidates=candidates)
    runs = [str(donor)] if donors else []
    return config.replace("transfer", donor_runs=runs, seed_population=seeded)


def first_population(run_dir: Path, size: int) -> tuple[int, float, float]:
    """Warm-started candidates, mean share transferred, mean first-epoch metric, of the first."""
    ds = load_results(run_dir).sortby("candidate").isel(candidate=slice(0, size))
    warm = int((ds["parent"] >= 0).sum())
    share = float(ds["frac_params_transferred"].mean())
    first_epoch = float(ds["val_metric"].isel(epoch=0).mean())
    return warm, share, first_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="parent of the run directories (new)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="donor-seeding-"))
    quickstart = load_config(HERE / "quickstart.toml")
    size = quickstart.search.population_size
    donor = out / "quickstart"
    with connect(quickstart) as client:
        Experiment(quickstart, donor, progress=False).run(client)
        print(f"donor run {donor} (seed {quickstart.experiment.seed})")
        print(f"| seed | search | warm-started (of {size}) | mean share transferred | R² epoch 1 |")
        print("| --- | --- | --- | --- | --- |")
        for seed in args.seeds:
            for name, donors, seeded in KINDS:
                config = second_search(donor, seed, args.candidates, donors, seeded)
                run_dir = out / f"seed{seed}-{name.replace(', ', '-')}"
                Experiment(config, run_dir, progress=False).run(client)
                warm, share, metric = first_population(run_dir, size)
                print(f"| {seed} | {name} | {warm} | {share:.1%} | {metric:.4f} |", flush=True)


if __name__ == "__main__":
    main()
