"""The report's lineage figures: the inheritance tree, and how popular each donor was.

In the tree, hovering a candidate shows its last steps of ancestry; clicking one draws its whole
ancestry in red and lists, step by step, what each candidate took from its donor (worked out in
the browser from the ``parent`` column, so the page does not grow with the square of the
lineage's depth). The tree's data source is named ``lineage``: one row, one mark, per candidate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from bokeh.core.property.vectorization import Field
from bokeh.layouts import row
from bokeh.models import (
    BasicTicker,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    HoverTool,
    LayoutDOM,
    Scatter,
    TapTool,
)
from bokeh.models.annotations.labels import LabelSet
from bokeh.models.annotations.legends import ColorBar
from bokeh.models.renderers import GlyphRenderer
from bokeh.models.widgets.markups import Div
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from bokeh.transform import linear_cmap

from ckptnas.analysis._bokeh_figures import FAILED, WARM, new_figure, note
from ckptnas.analysis._lineage_stats import Inheritance, Lineage, plural
from ckptnas.analysis._report_data import RunSnapshot
from ckptnas.storage import CandidateStatus

#: Candidates up to which the tree labels every mark with its id (beyond, labels overlap).
_LABELLED = 150
#: Steps of ancestry a tooltip shows; a click on the candidate shows them all.
_TOOLTIP_STEPS = 6
_SELECT_JS = (Path(__file__).with_name("_lineage_select.js")).read_text(encoding="utf-8")
_PANEL_HINT = (
    "<p class='note'>Click a candidate to see its ancestry and what each step inherited.</p>"
)


def _short_ancestry(lineage: Lineage, cid: int) -> str:
    chain, node = [cid], lineage.parent(cid)
    while node is not None and len(chain) <= _TOOLTIP_STEPS:
        chain.append(node)
        node = lineage.parent(node)
    more = f" ... ({lineage.depths[cid] - _TOOLTIP_STEPS} more)" if node is not None else ""
    return " <- ".join(map(str, chain)) + more


def _inherited(step: Inheritance) -> str:
    if step.donor is None:
        return "nothing (trained from scratch)"
    tensors = plural(len(step.tensors), "tensor")
    return f"{step.frac_params_transferred:.0%} of its parameters ({tensors}) from {step.donor}"


def _node_source(snap: RunSnapshot, pos: dict[int, tuple[float, float]]) -> ColumnDataSource:
    lineage = snap.lineage
    records = snap.records
    steps = [Inheritance.of(r) for r in records]
    markers = {CandidateStatus.OK: "circle", CandidateStatus.FAILED: "x"}
    # The fill shows the objective; an x (failed) has only its outline, drawn in red.
    outlines = {CandidateStatus.OK: "#555555", CandidateStatus.FAILED: FAILED}
    return ColumnDataSource(
        {
            "id": np.array([r.id for r in records], dtype=np.int64),
            "x": np.array([pos[r.id][0] for r in records]),
            "y": np.array([pos[r.id][1] for r in records]),
            "parent": np.array(
                [-1 if (p := lineage.parent(r.id)) is None else p for r in records], dtype=np.int64
            ),
            "objective": np.array([r.objective for r in records]),
            "status": [str(r.status) for r in records],
            "marker": [markers.get(r.status, "square") for r in records],
            "outline": [outlines.get(r.status, "#888888") for r in records],
            "arch": [snap.described.get(r.id, "") for r in records],
            "depth": np.array([lineage.depths[r.id] for r in records], dtype=np.int64),
            "inherited": [_inherited(s) for s in steps],
            "frac": np.array([s.frac_params_transferred for s in steps]),
            "n_tensors": np.array([len(s.tensors) for s in steps], dtype=np.int64),
            "prefix": np.array([s.prefix_length for s in steps], dtype=np.int64),
            "layers": [", ".join(s.layers) for s in steps],
            "ancestry": [_short_ancestry(lineage, r.id) for r in records],
        },
        name="lineage",
    )


def _edges(snap: RunSnapshot, pos: dict[int, tuple[float, float]]) -> dict[str, list[list[float]]]:
    """Elbow edges from each donor to its children: along the donor's row, then down."""
    xs, ys = [], []
    for cid in snap.lineage.records:
        parent = snap.lineage.parent(cid)
        if parent is not None:
            (x0, y0), (x1, y1) = pos[parent], pos[cid]
            xs.append([x0, x0, x1])
            ys.append([y0, y1, y1])
    return {"xs": xs, "ys": ys}


def _tree_figure(snap: RunSnapshot, n_rows: float) -> figure:
    """The empty tree: one column per generation, one row per mark, no y axis to read."""
    fig = new_figure(
        f"Lineage tree: each candidate under the donor it inherited from, coloured by "
        f"{snap.metric}",
        "generation (0: trained from scratch)",
        "",
        height=int(min(1400, max(320, 80 + 14 * n_rows))),
        y_range=(n_rows - 0.5, -0.5),
    )
    fig.yaxis.visible = False
    fig.ygrid.visible = False
    fig.xaxis.ticker = BasicTicker(min_interval=1)  # integers, spaced to fit
    return fig


def _objective_cmap(snap: RunSnapshot) -> Field:
    """Colours over the range of the finite objectives (grey for the rest)."""
    finite = [r.objective for r in snap.records if math.isfinite(r.objective)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    return linear_cmap(
        "objective", Viridis256, low, high if high > low else low + 1e-9, nan_color="#bbbbbb"
    )


def _draw_marks(fig: figure, nodes: ColumnDataSource, cmap: Field) -> GlyphRenderer[Scatter]:
    """One mark per candidate, filled by objective, shaped and outlined by status."""
    marks = fig.scatter(
        "x",
        "y",
        source=nodes,
        marker="marker",
        size=11,
        fill_color=cmap,
        line_color="outline",
        line_width=1.5,
        nonselection_alpha=0.5,
        name="lineage_marks",
    )
    # The clicked candidate: ringed in the colour of its ancestry path.
    marks.selection_glyph = Scatter(
        marker="marker", size=13, fill_color=cmap, line_color=FAILED, line_width=3
    )
    return marks


def _ancestry_panel(
    snap: RunSnapshot, nodes: ColumnDataSource, path: ColumnDataSource, height: int | None
) -> Div:
    """The panel beside the tree that lists the clicked candidate's ancestry step by step.

    The click also draws that ancestry on ``path``; both are worked out in the browser.
    """
    # A long ancestry scrolls within the panel, which is never taller than the tree.
    panel = Div(
        text=_PANEL_HINT,
        width=360,
        name="ancestry_panel",
        styles={"overflow-y": "auto", "max-height": f"{height}px"},
    )
    nodes.selected.js_on_change(
        "indices",
        CustomJS(
            args={
                "nodes": nodes,
                "path": path,
                "panel": panel,
                "hint": _PANEL_HINT,
                "key": f"{snap.page_key}:selected",
            },
            code=_SELECT_JS,
        ),
    )
    return panel


def lineage_tree(snap: RunSnapshot) -> LayoutDOM:
    """The inheritance forest, coloured by objective, with the clicked candidate's ancestry."""
    if not len(snap.lineage):
        return note("No candidate has been submitted yet.", name="lineage_tree")
    pos = snap.lineage.layout()
    nodes = _node_source(snap, pos)
    fig = _tree_figure(snap, n_rows=max(y for _, y in pos.values()) + 1)
    fig.multi_line(
        "xs", "ys", source=ColumnDataSource(_edges(snap, pos)), color="#999999", line_width=1
    )
    path = ColumnDataSource({"xs": [], "ys": []}, name="ancestry_path")
    fig.multi_line("xs", "ys", source=path, color=FAILED, line_width=3)
    cmap = _objective_cmap(snap)
    marks = _draw_marks(fig, nodes, cmap)
    if len(snap.lineage) <= _LABELLED:
        fig.add_layout(
            LabelSet(
                x="x", y="y", text="id", source=nodes, x_offset=6, y_offset=-2, text_font_size="7pt"
            )
        )
    fig.add_layout(ColorBar(color_mapper=cmap["transform"], title=snap.metric, width=10), "right")
    fig.add_tools(
        HoverTool(
            renderers=[marks],
            tooltips=[
                ("candidate", "@id (@status)"),
                ("objective", "@objective{0.0000}"),
                ("inherited", "@inherited"),
                ("ancestry", "@ancestry"),
                ("architecture", "@arch"),
            ],
        ),
        TapTool(renderers=[marks]),
    )
    panel = _ancestry_panel(snap, nodes, path, fig.height)
    layout: LayoutDOM = row(fig, panel, sizing_mode="stretch_width", name="lineage_tree")
    return layout


def donor_popularity(snap: RunSnapshot) -> LayoutDOM:
    """How many candidates each donor seeded, overall and in a sliding window."""
    lineage = snap.lineage
    counts = lineage.donor_counts()
    if not counts:
        return note("No candidate has served as donor yet.", name="donors")
    top = list(counts.items())[:20]
    factors = [str(d) for d, _ in top]
    bars = new_figure(
        f"Most used donors: candidates that inherited from each ({len(counts)} donors in all)",
        "donor (candidate id)",
        "children",
        x_range=factors,
    )
    source = ColumnDataSource(
        {
            "donor": factors,
            "children": [n for _, n in top],
            "objective": [lineage.records[d].objective for d, _ in top],
            "depth": [lineage.depths[d] for d, _ in top],
        }
    )
    drawn = bars.vbar(x="donor", top="children", width=0.8, color=WARM, source=source)
    bars.add_tools(
        HoverTool(
            renderers=[drawn],
            tooltips=[
                ("donor", "@donor"),
                ("children", "@children"),
                ("objective", "@objective{0.0000}"),
                ("generation", "@depth"),
            ],
        )
    )
    window = snap.config.search.population_size if snap.config else 10
    layout: LayoutDOM = row(
        bars, _windowed(lineage, window), sizing_mode="stretch_width", name="donors"
    )
    return layout


def _windowed(lineage: Lineage, window: int) -> figure:
    """Children of the donors that led some window, within each window of ``window``."""
    windows = lineage.donor_windows(window)
    leaders = list(dict.fromkeys(d for _, d, _ in windows.leaders()))
    column_of = {int(d): j for j, d in enumerate(windows.donors)}
    leaders.sort(key=lambda d: -int(windows.counts[:, column_of[d]].max()))
    fig = new_figure(
        f"Children within the last {window} candidates (sliding window), per leading donor",
        "candidate id (end of the window)",
        "children in the window",
        y_range=DataRange1d(start=0),
    )
    for k, donor in enumerate(leaders[:8]):
        fig.line(
            windows.candidates,
            windows.counts[:, column_of[donor]],
            color=Category10_10[k],
            line_width=2,
            legend_label=f"donor {donor}",
        )
    fig.legend.click_policy = "hide"
    fig.legend.location = "top_left"
    return fig
