"""The report's table of candidates: one row each, sortable by any column.

The table's data source is named ``candidates`` (the browser tests and users' scripts read it
from the page), the table itself ``candidate_table``. Columns that would be empty for the run
(searched hyperparameters, measured latency) are left out.
"""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.models.widgets.tables import (
    DataTable,
    HTMLTemplateFormatter,
    NumberFormatter,
    TableColumn,
)

from ckptnas.analysis._report_data import RunSnapshot
from ckptnas.storage import CandidateRecord, CandidateStatus


def _count() -> NumberFormatter:
    # A new model each time: a bokeh model belongs to one document, and each page is one.
    return NumberFormatter(format="0", nan_format="-")


def _seconds(x: float) -> float:
    return x if math.isfinite(x) else math.nan


def _status(record: CandidateRecord, epochs: int) -> str:
    """The status, and ``continuing`` for a candidate promoted to train on (successive halving)."""
    if record.status == CandidateStatus.OK and record.target_epochs > epochs:
        return "continuing"
    return str(record.status)


def _hyperparameters(record: CandidateRecord) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(record.hyperparameters.items()))


def _data(snap: RunSnapshot) -> dict[str, Any]:
    records = snap.records
    t0 = snap.start
    epochs = [len(snap.curves.get(r.id, [])) for r in records]
    data: dict[str, Any] = {
        "id": np.array([r.id for r in records], dtype=np.int64),
        "arch": [snap.described.get(r.id, "") for r in records],
        "parent": np.array([math.nan if r.parent is None else r.parent for r in records]),
        "tensors": np.array([len(r.transferred) for r in records], dtype=np.int64),
        "inherited": np.array([r.frac_params_transferred for r in records]),
        "objective": np.array([r.objective for r in records]),
        "epochs": np.array(epochs, dtype=np.int64),
        "status": [_status(r, n) for r, n in zip(records, epochs, strict=True)],
        "worker": [r.worker for r in records],
        "train_s": np.array([_seconds(r.end_time - r.start_time) for r in records]),
        "end_s": np.array([_seconds(r.end_time - t0) for r in records]),
    }
    if any(r.parent_run for r in records):  # donors of earlier runs: name their run
        data["parent_run"] = [PurePath(r.parent_run).name for r in records]
    if any(r.hyperparameters for r in records):
        data["hyperparameters"] = [_hyperparameters(r) for r in records]
    if any(math.isfinite(r.latency) for r in records):
        data["latency_ms"] = np.array([1000 * r.latency for r in records])
    return data


def _columns(snap: RunSnapshot, data: dict[str, Any]) -> list[TableColumn]:
    # Long texts are cut to the column; the whole text shows when hovering.
    text = HTMLTemplateFormatter(template='<span title="<%- value %>"><%- value %></span>')
    columns = [
        TableColumn(field="id", title="id", formatter=_count(), width=50),
        TableColumn(field="arch", title="architecture", formatter=text, width=420),
    ]
    if "hyperparameters" in data:
        columns.append(
            TableColumn(field="hyperparameters", title="hyperparameters", formatter=text, width=200)
        )
    columns += [
        TableColumn(field="parent", title="parent", formatter=_count(), width=60),
    ]
    if "parent_run" in data:
        columns.append(TableColumn(field="parent_run", title="parent's run", width=100))
    columns += [
        TableColumn(field="tensors", title="tensors taken", formatter=_count(), width=90),
        TableColumn(
            field="inherited",
            title="params inherited",
            formatter=NumberFormatter(format="0%"),
            width=100,
        ),
        TableColumn(
            field="objective",
            title=f"objective ({snap.metric})",
            formatter=NumberFormatter(format="0.0000", nan_format="-"),
            width=100,
        ),
    ]
    if "latency_ms" in data:
        columns.append(
            TableColumn(
                field="latency_ms",
                title="latency (ms)",
                formatter=NumberFormatter(format="0.00", nan_format="-"),
                width=80,
            )
        )
    return [
        *columns,
        TableColumn(field="epochs", title="epochs", formatter=_count(), width=60),
        TableColumn(field="status", title="status", width=80),
        TableColumn(field="worker", title="worker", width=70),
        TableColumn(
            field="train_s",
            title="training (s)",
            formatter=NumberFormatter(format="0.0", nan_format="-"),
            width=80,
        ),
        TableColumn(
            field="end_s",
            title="finished at (s)",
            formatter=_count(),
            width=90,
        ),
    ]


def candidate_table(snap: RunSnapshot) -> DataTable:
    """Every candidate, sortable by any column (click a header)."""
    data = _data(snap)
    return DataTable(
        source=ColumnDataSource(data, name="candidates"),
        columns=_columns(snap, data),
        sortable=True,
        reorderable=False,  # reordering columns needs jquery-ui, which bokeh does not embed
        index_position=None,
        height=min(420, 40 + 25 * max(len(snap.lineage), 1)),
        sizing_mode="stretch_width",
        name="candidate_table",
    )
