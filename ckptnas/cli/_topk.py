"""``ckptnas train-topk``: full training of a search's best candidates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.cli._common import add_cluster_flags, add_trust_flag, apply_flags
from ckptnas.storage import INITS, RunDir, recorded_config

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``train-topk`` command."""
    topk = sub.add_parser("train-topk", help="fully train a search's best candidates")
    topk.add_argument("run_dir")
    topk.add_argument("-k", type=int, default=5, help="how many of the best candidates")
    topk.add_argument("--epochs", type=int, default=50, help="epochs at most per run")
    topk.add_argument(
        "--init",
        choices=(*INITS, "both"),
        default="both",
        help="random weights, the search's checkpoint weights, or both (paired)",
    )
    topk.add_argument("--patience", type=int, default=5, help="early-stopping patience")
    topk.add_argument(
        "--min-delta", type=float, default=0.0, help="smallest validation-loss improvement"
    )
    add_cluster_flags(topk)
    add_trust_flag(topk)
    topk.set_defaults(func=cmd_train_topk)


def cmd_train_topk(args: argparse.Namespace) -> int:
    """Train the ``args.k`` best candidates fully; print each one's result per init."""
    from ckptnas.storage import MISSING, Init
    from ckptnas.topk import TopKSettings, train_topk

    run_dir = Path(args.run_dir)
    files = RunDir(run_dir)
    config = apply_flags(recorded_config(files), args)
    settings = TopKSettings(
        k=args.k, max_epochs=args.epochs, patience=args.patience, min_delta=args.min_delta
    )
    inits = INITS if args.init == "both" else (Init(args.init),)
    ds = train_topk(
        run_dir,
        settings,
        inits,
        config=config,
        progress=not args.no_progress,
        trust_code=args.trust_code,
    )
    metric = ds.attrs.get("metric", "metric")
    print(f"wrote {files.topk_results}")
    # "val": the rows that chose and stopped the models; "test": the held-out ones.
    val, test = f"val {metric}", f"test {metric}"
    print(f"{'rank':>4} {'cand':>5} {'init':>10} {'epochs':>6} {val:>9} {test:>9} {'t_target':>9}")
    for rank in ds["rank"].values:
        row = ds.sel(rank=rank)
        for init in ds.init.values:
            if row.status.sel(init=init) == MISSING:
                continue
            cell = row.sel(init=init)
            print(
                f"{int(rank):>4} {int(row.candidate):>5} {init:>10} {int(cell.n_epochs):>6} "
                f"{float(cell.final_metric):>9.4f} {float(cell.test_metric):>9.4f} "
                f"{float(cell.time_to_target):>8.1f}s"
            )
    return 0
