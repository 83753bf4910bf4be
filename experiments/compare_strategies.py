"""Compare search strategies at the same total number of training epochs, all with ``lcp``.

Three searches per seed on the synthetic data of ``compare_synthetic.toml``:

- ``evolution``: regularized evolution, every candidate trained ``[training] epochs`` (3);
- ``asha``: the same evolution, with asynchronous successive halving (rungs 1, 3, 9 epochs);
- ``asha-short``: the same, with rungs 1 and 3 only (no candidate trains longer than above);
- ``tpe``: Optuna's TPE sampler, every candidate trained ``[training] epochs``;
- ``tpe+asha``: TPE with the rungs of ``asha``.

Each search may spend ``--epochs`` training epochs in all (``[experiment]
max_training_epochs``), the fair unit when some candidates stop early. The table gives each
search's best objective (validation R²) over the seeds, as mean ± standard deviation. Finished
runs are reused, so an interrupted comparison continues where it stopped.

    python experiments/compare_strategies.py --out runs/compare-strategies
    python experiments/compare_strategies.py --quick --out /tmp/q    # a miniature (seconds)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client

from ckptnas.config import Config, config_from_dict
from ckptnas.runtime import Experiment, connect
from ckptnas.storage import RunDir, load_results

HERE = Path(__file__).resolve().parent

#: Each search, as changes to the base configuration.
ASHA = {"scheduler": "asha", "min_epochs": 1, "max_epochs": 9, "reduction_factor": 3}
TPE = {"strategy": "optuna", "sampler": "tpe"}
SEARCHES: dict[str, dict[str, dict[str, Any]]] = {
    "evolution": {},
    "asha": {"search": ASHA},
    "asha-short": {"search": ASHA | {"max_epochs": 3}},
    "tpe": {"search": TPE},
    "tpe+asha": {"search": TPE | ASHA},
}


def base_config(
    epochs_budget: int, quick: bool, source: Path = HERE / "compare_synthetic.toml"
) -> Config:
    """The shared settings: the synthetic comparison's data, space and training, lcp."""
    values = tomllib.loads(source.read_text(encoding="utf-8"))
    values.pop("compare", None)
    values["experiment"] |= {"max_candidates": 1000, "max_training_epochs": epochs_budget}
    values["training"]["epochs"] = 3
    values["transfer"] = {"policy": "lcp"}
    if quick:
        values["data"]["n_samples"] = 300
        values["space"] |= {"units": [8, 16], "num_nodes": 2}
        values["training"]["epochs"] = 1
        values["search"] |= {"population_size": 2, "sample_size": 1}
    return config_from_dict(values)


def configure(
    base: Config,
    search: str,
    seed: int,
    quick: bool,
    searches: dict[str, dict[str, dict[str, Any]]] = SEARCHES,
) -> Config:
    """One search of one seed."""
    config = base.replace("experiment", seed=seed, name=f"{search}-{seed}")
    for table, values in searches[search].items():
        quick_rungs = {"max_epochs": 3} if quick and "max_epochs" in values else {}
        config = config.replace(table, **(values | quick_rungs))
    return config


def run_one(config: Config, run_dir: Path, client: Client) -> None:
    """Run a search unless its directory already holds a finished one."""
    if RunDir(run_dir).results.is_file():
        return
    if run_dir.exists():  # an interrupted run: start it again from nothing
        shutil.rmtree(run_dir)
    Experiment(config, run_dir, progress=False).run(client)


def table(out: Path, seeds: Sequence[int], searches: Sequence[str] = tuple(SEARCHES)) -> str:
    """Best objective per search over the seeds, with the epochs and candidates it took."""
    lines = [
        "| search | best objective (mean ± sd) | per seed | epochs trained | candidates |",
        "| --- | --- | --- | --- | --- |",
    ]
    for search in searches:
        best, epochs, candidates = [], [], []
        for seed in seeds:
            ds = load_results(out / search / str(seed))
            best.append(float(ds["objective"].max()))
            epochs.append(int(np.isfinite(ds["val_metric"].values).sum()))
            candidates.append(ds.sizes["candidate"])
        per_seed = ", ".join(f"{b:.4f}" for b in best)
        lines.append(
            f"| {search} | {np.mean(best):.4f} ± {np.std(best, ddof=1):.4f} | {per_seed} | "
            f"{np.mean(epochs):.0f} | {np.mean(candidates):.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compare-strategies"))
    parser.add_argument("--epochs", type=int, default=90, help="training epochs per search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=0, help="LocalCluster workers")
    parser.add_argument("--quick", action="store_true", help="a miniature, in seconds")
    args = parser.parse_args(argv)
    base = base_config(12 if args.quick else args.epochs, args.quick)
    with connect(base.replace("cluster", n_workers=args.workers)) as client:
        for seed in args.seeds:
            for search in SEARCHES:
                run_dir = args.out / search / str(seed)
                run_one(configure(base, search, seed, args.quick), run_dir, client)
                print(f"{search} seed {seed}: done", flush=True)
    text = table(args.out, args.seeds)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
