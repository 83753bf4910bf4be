"""The report's interactive figures of candidates: objectives, curves and timeline.

Each function takes a :class:`RunSnapshot` and returns a bokeh layout, or a short note
(:func:`note`) when the run has nothing to show there yet, so that a live page of a run that
has just started is valid too. Each layout carries a ``name``, by which the page places it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from bokeh.layouts import row
from bokeh.models import (
    BasicTicker,
    ColumnDataSource,
    DataRange1d,
    HoverTool,
    LayoutDOM,
)
from bokeh.models.annotations.geometry import Whisker
from bokeh.models.annotations.labels import LabelSet, Title
from bokeh.models.renderers import DataRenderer
from bokeh.models.widgets.markups import Div
from bokeh.plotting import figure

from ckptnas.analysis._report_data import RunSnapshot
from ckptnas.analysis._stages import Stage
from ckptnas.storage import CandidateRecord, CandidateStatus

#: Colours of the report, the same as the PNG figures' (matplotlib's tab:orange, tab:gray).
WARM, SCRATCH, FAILED = "#ff7f0e", "#7f7f7f", "#d62728"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def note(text: str, name: str = "") -> Div:
    """A line of text in place of a figure that has nothing to show yet."""
    return Div(text=f"<p class='note'>{text}</p>", name=name or None)


def new_figure(title: str, x_label: str, y_label: str, height: int = 320, **kwargs: Any) -> figure:
    """A figure that fills the page's width, with the report's tools."""
    return figure(
        title=title,
        x_axis_label=x_label,
        y_axis_label=y_label,
        height=height,
        sizing_mode="stretch_width",
        tools=TOOLS,
        toolbar_location="above",
        **kwargs,
    )


def _successful(snap: RunSnapshot) -> list[CandidateRecord]:
    return [
        r for r in snap.records if r.status == CandidateStatus.OK and math.isfinite(r.objective)
    ]


def _objective_range(values: np.ndarray) -> DataRange1d:
    """A y range that keeps a few diverged candidates from squashing the rest (as in the PNGs)."""
    if values.size > 4:
        low, high = float(np.percentile(values, 2)), float(np.max(values))
        if high > low:
            return DataRange1d(start=low - 0.1 * (high - low), end=high + 0.05 * (high - low))
    return DataRange1d()


def objective_figures(snap: RunSnapshot) -> LayoutDOM:
    """The objective of every successful candidate, and the best so far, by id and by time."""
    ok = _successful(snap)
    if not ok:
        return note("No candidate has finished successfully yet.", name="objectives")
    t0 = snap.start
    ids = np.array([r.id for r in ok])
    objectives = np.array([r.objective for r in ok])
    y_range = _objective_range(objectives)  # shared: zooming one zooms both
    failed = snap.count(CandidateStatus.FAILED)
    by_id = new_figure(
        "Objective of each candidate, in submission order, and the best so far"
        + (f" ({failed} failed, not shown)" if failed else ""),
        "candidate id",
        f"objective (validation {snap.metric})",
        y_range=y_range,
    )
    by_time = new_figure(
        "Best objective over the run's wall time",
        "seconds since the first submission",
        f"objective (validation {snap.metric})",
        y_range=y_range,
    )
    points: dict[str, list[DataRenderer]] = {"id": [], "end": []}
    tooltips = [("candidate", "@id"), ("objective", "@objective{0.0000}"), ("parent", "@parent")]
    for warm, color, label in ((True, WARM, "warm-started"), (False, SCRATCH, "from scratch")):
        group = [r for r in ok if (r.parent is not None) == warm]
        source = ColumnDataSource(
            {
                "id": [r.id for r in group],
                "objective": [r.objective for r in group],
                "end": [r.end_time - t0 for r in group],
                "parent": ["-" if r.parent is None else str(r.parent) for r in group],
            }
        )
        for x, fig in (("id", by_id), ("end", by_time)):
            points[x].append(
                fig.scatter(x, "objective", source=source, size=7, color=color, legend_label=label)
            )
    by_id.step(
        ids, np.fmax.accumulate(objectives), mode="after", color="black", legend_label="best"
    )
    order = np.argsort([r.end_time for r in ok], kind="stable")
    ends = np.array([r.end_time - t0 for r in ok])[order]
    by_time.step(
        ends,
        np.fmax.accumulate(objectives[order]),
        mode="after",
        color="black",
        legend_label="best",
    )
    for x, fig in (("id", by_id), ("end", by_time)):
        fig.add_tools(HoverTool(tooltips=tooltips, renderers=points[x]))
        fig.legend.location = "bottom_right"
    layout: LayoutDOM = row(by_id, by_time, sizing_mode="stretch_width", name="objectives")
    return layout


def _mean_curve(snap: RunSnapshot, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean validation metric per epoch of some candidates, its standard error, how many."""
    curves = [[epoch[2] for epoch in snap.curves.get(cid, [])] for cid in ids]
    curves = [c for c in curves if c]
    if not curves:
        return np.array([]), np.array([]), 0
    longest = max(len(c) for c in curves)
    values = np.full((len(curves), longest), np.nan)
    for i, c in enumerate(curves):
        values[i, : len(c)] = c
    mean, sem = np.full(longest, np.nan), np.full(longest, np.nan)
    for epoch in range(longest):
        finite = values[:, epoch][np.isfinite(values[:, epoch])]
        if finite.size:
            mean[epoch] = finite.mean()
            sem[epoch] = finite.std() / np.sqrt(finite.size)
    return mean, sem, len(curves)


def _stage_figure(snap: RunSnapshot, stage: Stage) -> figure:
    members = set(stage.candidates)
    ok = {r.id: r for r in _successful(snap) if r.id in members}
    first, last = min(stage.candidates), max(stage.candidates)
    fig = new_figure(
        f"{stage.name}: candidates {first}-{last}",
        "epoch",
        f"mean validation {snap.metric} (± s.e.m.)",
        height=300,
    )
    note_text = "warm vs scratch within this stage only"
    if len({len(snap.curves.get(cid, [])) for cid in ok}) > 1:  # successive halving's rungs
        note_text += "; later epochs: only the candidates promoted that far"
    fig.add_layout(Title(text=note_text, text_font_style="italic"), "above")
    fig.xaxis.ticker = BasicTicker(min_interval=1)  # integers, spaced to fit
    for warm, color, label in ((True, WARM, "warm-started"), (False, SCRATCH, "from scratch")):
        ids = [cid for cid, r in ok.items() if (r.parent is not None) == warm]
        mean, sem, n = _mean_curve(snap, ids)
        if not n:
            fig.scatter([], [], color=color, legend_label=f"{label} (n = 0)")
            continue
        epochs = np.arange(1, len(mean) + 1)
        source = ColumnDataSource(
            {"epoch": epochs, "mean": mean, "low": mean - sem, "high": mean + sem}
        )
        legend = f"{label} (n = {n})"
        fig.line("epoch", "mean", source=source, color=color, line_width=2, legend_label=legend)
        fig.scatter("epoch", "mean", source=source, color=color, size=7, legend_label=legend)
        fig.add_layout(
            Whisker(source=source, base="epoch", lower="low", upper="high", line_color=color)
        )
    fig.legend.location = "bottom_right"
    return fig


def validation_curves(snap: RunSnapshot) -> LayoutDOM:
    """Mean validation curves of warm-started and scratch candidates, stage by stage.

    Candidates are compared only with others of the same stage of the search (see
    :meth:`RunSnapshot.stages`): what a strategy drew at random is never set against what it
    proposed from the best candidates so far.
    """
    figures = [_stage_figure(snap, s) for s in snap.stages() if s.candidates]
    if not figures:
        return note("No candidate has finished yet.", name="curves")
    layout: LayoutDOM = row(*figures, sizing_mode="stretch_width", name="curves")
    return layout


def _trained(snap: RunSnapshot) -> list[CandidateRecord]:
    """The candidates a worker has trained, with the start and end of their training."""
    return [
        r
        for r in snap.records
        if math.isfinite(r.start_time) and math.isfinite(r.end_time) and r.worker
    ]


def _timeline_source(ran: list[CandidateRecord], t0: float) -> ColumnDataSource:
    """One row per training: its worker, its bar's ends in seconds since ``t0``, its colour."""
    colors = [
        FAILED if r.status != CandidateStatus.OK else WARM if r.parent is not None else SCRATCH
        for r in ran
    ]
    return ColumnDataSource(
        {
            "id": [r.id for r in ran],
            "worker": [r.worker for r in ran],
            "left": [r.start_time - t0 for r in ran],
            "right": [r.end_time - t0 for r in ran],
            "middle": [(r.start_time + r.end_time) / 2 - t0 for r in ran],
            "seconds": [r.end_time - r.start_time for r in ran],
            "status": [str(r.status) for r in ran],
            "color": colors,
        }
    )


def timeline(snap: RunSnapshot) -> LayoutDOM:
    """Which worker trained which candidate, when: one bar per training."""
    ran = _trained(snap)
    if not ran:
        return note("No candidate has been trained yet.", name="timeline")
    workers = sorted({r.worker for r in ran}, key=lambda w: (len(w), w))
    source = _timeline_source(ran, snap.start)
    fig = new_figure(
        "Worker timeline: orange warm-started, gray from scratch, red failed",
        "seconds since the first submission",
        "Dask worker",
        height=max(160, 60 + 40 * len(workers)),
        y_range=workers,
    )
    bars = fig.hbar(
        y="worker",
        left="left",
        right="right",
        height=0.7,
        color="color",
        line_color="white",
        source=source,
    )
    if len(ran) <= 80:  # beyond that the labels overlap; the hover still names each bar
        fig.add_layout(
            LabelSet(
                x="middle",
                y="worker",
                text="id",
                source=source,
                text_align="center",
                text_baseline="middle",
                text_font_size="8pt",
            )
        )
    fig.add_tools(
        HoverTool(
            renderers=[bars],
            tooltips=[("candidate", "@id"), ("status", "@status"), ("training", "@seconds{0.0} s")],
        )
    )
    fig.name = "timeline"
    return fig
