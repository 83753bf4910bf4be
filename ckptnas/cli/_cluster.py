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
    from ckptnas.runtime import CLUSTERS
    from ckptnas.runtime._registry import batch_words

    config = load_config(args.config)
    kind = CLUSTERS.get(config.cluster.kind)
    if not getattr(kind, "batch", False):
        raise CkptnasError(
            f"{args.config}: [cluster] kind = {config.cluster.kind!r} starts no batch jobs; "
            f"cluster-script is for kind = {batch_words()}"
        )
    print(kind.job_script(config))
    return 0
