"""What MLflow is told of a run and of each candidate: params, tags and metrics, as plain values.

Kept apart from the client calls (:mod:`~ckptnas.tracking._mlflow`), so what a run logs can be
read in one place: the run's configuration as the parent run's params; each candidate's
architecture choices and searched hyperparameters as its params, its lineage as tags, its
per-epoch curves as metrics stepped by epoch (1 is the first).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from typing import Any

from ckptnas.storage import CURVE_NAMES, CandidateRecord, CandidateStatus, LineageRegistry
from ckptnas.tracking._feed import Update

#: Longest param value MLflow 2.10 takes; longer values (lists in the configuration) are cut.
MAX_PARAM = 500
#: Longest tag value an MLflow server takes.
MAX_TAG = 5000

#: A metric as MLflow takes it: key, value, step.
Point = tuple[str, float, int]


def run_key(registry: LineageRegistry) -> str:
    """A name for the run that survives a resume: its directory and when it was made.

    The parent run carries it as a tag, found again by a search that needs no quoting.
    """
    text = f"{registry.run_dir.root.resolve()}\n{registry.get_meta('created') or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def config_params(registry: LineageRegistry) -> dict[str, str]:
    """The run's configuration, ``table.key`` to its value as text."""
    text = registry.get_meta("config")
    tables: dict[str, Any] = tomllib.loads(text) if text else {}
    return {
        f"{table}.{key}": _text(value, MAX_PARAM)
        for table, keys in tables.items()
        if isinstance(keys, dict)
        for key, value in keys.items()
    }


def run_tags(registry: LineageRegistry, name: str) -> dict[str, str]:
    """The parent run's tags: its name, where the run is, what it learns from."""
    tags = {
        "mlflow.runName": name,
        "ckptnas.run_key": run_key(registry),
        "ckptnas.run_dir": str(registry.run_dir.root.resolve()),
    }
    for key in ("dataset", "task", "metric", "policy"):
        value = registry.get_meta(key)
        if value is not None:
            tags[f"ckptnas.{key}"] = value
    return tags


def candidate_params(record: CandidateRecord, node_names: list[str]) -> dict[str, str]:
    """Each architecture choice (``arch.<node>``) and each searched hyperparameter."""
    names = node_names if len(node_names) == len(record.arch) else []
    names = names or [f"node{i}" for i in range(len(record.arch))]
    params = {f"arch.{name}": str(choice) for name, choice in zip(names, record.arch, strict=True)}
    params.update({name: _text(value, MAX_PARAM) for name, value in record.hyperparameters.items()})
    return params


def candidate_tags(
    record: CandidateRecord, described: str, parent_runs: Mapping[int, str]
) -> dict[str, str]:
    """A candidate's lineage and state: parent, transferred share, stage, what failed."""
    tags = {
        "ckptnas.candidate": str(record.id),
        "ckptnas.parent": record.parent_label or "none",
        "ckptnas.frac_params_transferred": f"{record.frac_params_transferred:.6g}",
        "ckptnas.n_params_transferred": str(record.n_params_transferred),
        "ckptnas.status": str(record.status),
        "ckptnas.architecture": _text(described, MAX_TAG),
    }
    if record.stage:
        tags["ckptnas.stage"] = record.stage
    if record.parent is not None and not record.parent_run and record.parent in parent_runs:
        tags["ckptnas.parent_run_id"] = parent_runs[record.parent]
    if record.status == CandidateStatus.FAILED and record.error:
        tags["ckptnas.error"] = _text(record.error, MAX_TAG)
    return tags


def candidate_points(update: Update) -> list[Point]:
    """The epochs not logged yet of each curve, then the candidate's final numbers."""
    points = [
        (name, value, epoch)
        for epoch, row in enumerate(update.curve, start=1)
        if epoch > update.logged
        for name, value in zip(CURVE_NAMES, row, strict=True)
    ]
    record, last = update.record, len(update.curve)
    finals = {"objective": record.objective, "latency": record.latency}
    points += [(k, v, last) for k, v in finals.items() if math.isfinite(v)]
    if update.logged == 0:
        points.append(("n_params", float(record.n_params), 0))
    return points


def node_names(registry: LineageRegistry) -> list[str]:
    """The names of the space's variable nodes, as the run recorded them (may be none)."""
    try:
        names = json.loads(registry.get_meta("space") or "{}").get("node_names", [])
    except (ValueError, AttributeError):  # a damaged record: the nodes are numbered instead
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _text(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
