"""The lineage as a graph for other tools: a networkx graph, GraphML and Graphviz DOT files.

Nodes are candidates (id, status, objective, architecture, parameters, depth, worker); an edge
runs from each donor to each candidate that inherited from it, with what was transferred.
GraphML (through networkx) opens in Gephi, Cytoscape and yEd; DOT in Graphviz
(``dot -Tsvg lineage.dot``). DOT is written here rather than through networkx, whose writer
needs pydot or pygraphviz for a dozen lines of text.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckptnas.analysis._lineage_stats import Lineage
from ckptnas.storage import refuse_overwrite, replacing

if TYPE_CHECKING:
    import networkx as nx


class GraphFormat(StrEnum):
    """The file formats :func:`export_lineage` writes."""

    GRAPHML = "graphml"
    DOT = "dot"


def lineage_graph(lineage: Lineage) -> nx.DiGraph:
    """The lineage as a directed graph, donor to child.

    Parameters
    ----------
    lineage : Lineage

    Returns
    -------
    networkx.DiGraph
        Integer nodes with ``status``, ``objective`` (absent while pending or when failed),
        ``arch`` (choices joined by commas), ``n_params``, ``depth`` and ``worker``; edges
        with ``n_tensors``, ``tensors`` (names joined by commas), ``prefix_length``,
        ``n_params_transferred`` and ``frac_params_transferred``.
    """
    import networkx as nx

    graph = nx.DiGraph(name="ckptnas lineage")
    for cid, r in lineage.records.items():
        attrs: dict[str, Any] = {
            "status": str(r.status),
            "arch": ",".join(map(str, r.arch)),
            "n_params": r.n_params,
            "depth": lineage.depths[cid],
            "worker": r.worker,
        }
        if math.isfinite(r.objective):  # GraphML readers disagree on NaN: leave it out
            attrs["objective"] = r.objective
        graph.add_node(cid, **attrs)
    for cid, r in lineage.records.items():
        donor = lineage.parent(cid)
        if donor is not None:
            graph.add_edge(
                donor,
                cid,
                n_tensors=len(r.transferred),
                tensors=",".join(r.transferred),
                prefix_length=r.prefix_length,
                n_params_transferred=r.n_params_transferred,
                frac_params_transferred=r.frac_params_transferred,
            )
    return graph


def lineage_dot(lineage: Lineage) -> str:
    """The lineage as a Graphviz DOT digraph: a box per candidate, an edge per inheritance."""
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
    ]
    for cid, r in lineage.records.items():
        score = f"{r.objective:.4f}" if math.isfinite(r.objective) else str(r.status)
        style = "" if math.isfinite(r.objective) else ", style=dashed"
        lines.append(f'  {cid} [label="{cid}\\n{_dot_escape(score)}"{style}];')
    for cid, r in lineage.records.items():
        donor = lineage.parent(cid)
        if donor is not None:
            label = f"{len(r.transferred)} tensors, {r.frac_params_transferred:.0%}"
            lines.append(f'  {donor} -> {cid} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def export_lineage(lineage: Lineage, path: str | Path, fmt: str | GraphFormat) -> Path:
    """Write the lineage as GraphML or DOT, atomically.

    Parameters
    ----------
    lineage : Lineage
    path : str or Path
    fmt : {"graphml", "dot"}

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> export_lineage(Lineage.from_run("runs/quickstart"), "lineage.graphml", "graphml")
    ...                                                                  # doctest: +SKIP
    """
    path = refuse_overwrite(path)
    if GraphFormat(fmt) == GraphFormat.DOT:
        text = lineage_dot(lineage)
    else:
        import networkx as nx

        text = "\n".join(nx.generate_graphml(lineage_graph(lineage))) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
