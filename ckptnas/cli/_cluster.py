"""``ckptnas cluster-script``: the batch job script a configuration's workers would run."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ckptnas.config import load_config
from ckptnas.errors import CkptnasError

if TYPE_CHECKING:
    from ckptnas.cli._common import Subparsers


def register(sub: Subparsers) -> None:
    """Add the ``cluster-script`` command."""
    script = sub.add_parser(
        "cluster-script", help="print the batch job script of each worker ([cluster] kind)"
    )
    script.add_argument("config", help="the experiment's TOML file")
    script.set_defaults(func=cmd_cluster_script)


def cmd_cluster_script(args: argparse.Namespace) -> int:
    """Print the job script of ``args.config``'s batch cluster, submitting nothing."""
    from ckptnas.config import BATCH_KINDS
    from ckptnas.runtime import batch_cluster

    config = load_config(args.config)
    if config.cluster.kind not in BATCH_KINDS:
        raise CkptnasError(
            f"{args.config}: [cluster] kind = {config.cluster.kind!r} starts no batch jobs; "
            "cluster-script is for kind = slurm, pbs, lsf or sge"
        )
    with batch_cluster(config) as cluster:
        print(cluster.job_script())
    return 0
