"""Compare schedulers at the same total number of training epochs, all with evolution and ``lcp``.

Three searches per seed on the quickstart's synthetic data (``quickstart.toml``), each the same
regularized evolution with a different ``[search] scheduler``, all on the rung ladder 1, 3, 9
epochs:

- ``asha``: asynchronous successive halving (every candidate starts at 1 epoch);
- ``hyperband``: asynchronous Hyperband, three ASHA brackets starting at 1, 3 and 9 epochs;
- ``median``: the median stopping rule, 1 epoch of grace then steps of 2 epochs up to 9.

Each search may spend ``--epochs`` training epochs in all (``[experiment]
max_training_epochs``). The table gives each scheduler's best objective (validation R²) over
the seeds, as mean ± standard deviation, per seed, the epochs trained and the candidates.
Finished runs are reused, so an interrupted comparison continues where it stopped. The helpers
are those of ``compare_strategies.py``.

    python experiments/compare_schedulers.py --out runs/compare-schedulers
    python experiments/compare_schedulers.py --quick --out /tmp/q    # a miniature (seconds)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the sibling script, also when this one is loaded by path
    sys.path.insert(0, str(HERE))

from compare_strategies import base_config, configure, run_one, table  # noqa: E402

from ckptnas.runtime import connect  # noqa: E402

LADDER = {"min_epochs": 1, "max_epochs": 9, "reduction_factor": 3}
#: Each scheduler, as changes to the base configuration.
SCHEDULERS: dict[str, dict[str, dict[str, Any]]] = {
    "asha": {"search": {"scheduler": "asha"} | LADDER},
    "hyperband": {"search": {"scheduler": "hyperband"} | LADDER},
    "median": {
        "search": {
            "scheduler": "median",
            "max_epochs": 9,
            "scheduler_options": {"grace_epochs": 1, "step_epochs": 2, "min_candidates": 3},
        }
    },
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compare-schedulers"))
    parser.add_argument("--epochs", type=int, default=60, help="training epochs per search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=0, help="LocalCluster workers")
    parser.add_argument("--quick", action="store_true", help="a miniature, in seconds")
    args = parser.parse_args(argv)
    budget = 12 if args.quick else args.epochs
    base = base_config(budget, args.quick, HERE / "quickstart.toml")
    with connect(base.replace("cluster", n_workers=args.workers)) as client:
        for seed in args.seeds:
            for name in SCHEDULERS:
                config = configure(base, name, seed, args.quick, SCHEDULERS)
                run_one(config, args.out / name / str(seed), client)
                print(f"{name} seed {seed}: done", flush=True)
    text = table(args.out, args.seeds, tuple(SCHEDULERS))
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
