"""The coordinates of ``results.nc``: its candidates, epochs and variable nodes."""

from __future__ import annotations

import numpy as np

from ckptnas.storage._records import CandidateRecord


def results_coords(
    records: list[CandidateRecord], n_epochs: int, node_names: list[str]
) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    """The coordinates of :func:`build_dataset`: candidate ids, epochs 1..E and node names."""
    return {
        "candidate": (
            "candidate",
            np.array([r.id for r in records], dtype=np.int64),
            {"long_name": "candidate id", "units": "1"},
        ),
        "epoch": (
            "epoch",
            np.arange(1, n_epochs + 1, dtype=np.int32),
            {"long_name": "training epoch", "units": "1"},
        ),
        "node": (
            "node",
            np.arange(len(node_names), dtype=np.int32),
            {"long_name": "variable node of the search space", "units": "1"},
        ),
        "node_name": ("node", np.array(node_names, dtype=object), {"long_name": "node name"}),
    }
