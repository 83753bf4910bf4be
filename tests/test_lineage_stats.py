"""Lineage analytics and exports, checked against the registry they are read from."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from helpers import recorded_search

from ckptnas.analysis import (
    Lineage,
    export_lineage,
    format_ancestry,
    format_lineage_stats,
    lineage_graph,
)
from ckptnas.cli import main
from ckptnas.errors import RunDirectoryError
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.storage import LineageRegistry


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 recorded candidates: two failed, one still in flight."""
    return recorded_search(
        tmp_path_factory.mktemp("run"), 60, seed=5, failed=(9, 30), pending=(60,)
    )


@pytest.fixture(scope="module")
def lineage(run: Path) -> Lineage:
    return Lineage.from_run(run)


def test_ancestry_follows_the_registry_with_what_each_step_took(
    run: Path, lineage: Lineage
) -> None:
    with LineageRegistry(run, readonly=True) as registry:
        for cid in (1, 17, 42, 59):
            steps = lineage.ancestry(cid)
            assert [s.candidate for s in steps] == [cid, *registry.ancestors(cid)]
            for step in steps:
                record = registry.get(step.candidate)
                assert step.donor == record.parent
                assert step.tensors == record.transferred
                assert step.frac_params_transferred == pytest.approx(record.frac_params_transferred)
            assert steps[-1].donor is None  # every ancestry ends trained from scratch


def test_ancestry_text_names_each_step_and_its_layers(lineage: Lineage) -> None:
    deep = max(lineage.depths, key=lambda c: (lineage.depths[c], c))
    lines = format_ancestry(lineage, deep).splitlines()
    steps = lineage.ancestry(deep)
    assert lines[0] == " <- ".join(str(s.candidate) for s in steps)
    assert len(lines) == len(steps) + 1
    assert lines[-1] == f"{steps[-1].candidate} trained from scratch"
    child = steps[0]
    assert lines[1].startswith(f"{deep} took {len(child.tensors)} tensor")
    assert f"from {child.donor}" in lines[1]
    # layers, not tensors: trunk.0 for trunk.0.weight and trunk.0.bias
    assert lines[1].endswith(", ".join(child.layers))
    assert all(not layer.endswith((".weight", ".bias")) for layer in child.layers)


def test_depths_count_generations_from_scratch(lineage: Lineage) -> None:
    for cid, depth in lineage.depths.items():
        assert depth == len(lineage.ancestry(cid)) - 1
    distribution = lineage.depth_distribution()
    assert sum(distribution.values()) == len(lineage) == 60
    assert distribution == dict(sorted(Counter(lineage.depths.values()).items()))
    assert distribution[0] == sum(lineage.parent(c) is None for c in lineage.records)


def test_donor_counts_are_children_per_donor(run: Path, lineage: Lineage) -> None:
    counts = lineage.donor_counts()
    with LineageRegistry(run, readonly=True) as registry:
        assert counts == {d: len(registry.children(d)) for d in counts}
        assert sum(counts.values()) == sum(r.parent is not None for r in registry.candidates())
    assert list(counts.values()) == sorted(counts.values(), reverse=True)


@pytest.mark.parametrize("window", [1, 7, 60, 100])
def test_donor_windows_count_each_window_by_brute_force(lineage: Lineage, window: int) -> None:
    windows = lineage.donor_windows(window)
    ids = list(lineage.records)
    assert list(windows.candidates) == ids
    for i in range(len(ids)):
        members = ids[max(0, i - window + 1) : i + 1]
        expected = Counter(lineage.parent(c) for c in members)
        for j, donor in enumerate(windows.donors):
            assert windows.counts[i, j] == expected[int(donor)]
    if window >= len(ids):  # one window holds the whole run: the overall counts
        overall = lineage.donor_counts()
        # The last window holds the whole run: its leader is the most used donor overall.
        assert int(windows.donors[0]) == next(iter(overall))
        assert int(windows.counts[-1, 0]) == next(iter(overall.values()))
    for candidate, donor, children in windows.leaders():  # the most drawn-on, by brute force
        i = ids.index(candidate)
        members = Counter(lineage.parent(c) for c in ids[max(0, i - window + 1) : i + 1])
        members.pop(None, None)
        assert children == max(members.values()) == members[donor]


def test_donor_windows_refuse_an_empty_window(lineage: Lineage) -> None:
    with pytest.raises(ValueError, match="window"):
        lineage.donor_windows(0)


def test_layout_puts_children_one_generation_right_and_leaves_on_their_own_rows(
    lineage: Lineage,
) -> None:
    pos = lineage.layout()
    assert set(pos) == set(lineage.records)
    for cid, (x, _) in pos.items():
        assert x == lineage.depths[cid]
    leaves = [c for c in lineage.records if not lineage.children.get(c)]
    rows = sorted(pos[c][1] for c in leaves)
    assert rows == list(np.arange(len(leaves), dtype=float))
    for parent, kids in lineage.children.items():
        if parent is not None:
            assert pos[parent][1] == pytest.approx(np.mean([pos[k][1] for k in kids]))


def test_a_lineage_thousands_of_generations_deep(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as registry:
        previous = None
        for _ in range(3000):
            plan = SCRATCH if previous is None else TransferPlan(previous, ("a.weight",), 1, 1)
            previous = registry.add_candidate((0,), plan, 2)
    lineage = Lineage.from_run(tmp_path)
    assert lineage.depth_distribution() == dict.fromkeys(range(3000), 1)
    assert len(lineage.ancestry(3000)) == 3000
    assert lineage.layout()[1] == (0.0, 0.0)


def test_looping_parent_links_are_refused(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as registry:
        a = registry.add_candidate((0,), SCRATCH, 1)
        b = registry.add_candidate((1,), TransferPlan(a, ("x.weight",), 1, 1), 1)
        c = registry.add_candidate((2,), TransferPlan(b, ("x.weight",), 1, 1), 1)
    with contextlib.closing(sqlite3.connect(tmp_path / LineageRegistry.FILE)) as db, db:
        db.execute("UPDATE candidates SET parent = ? WHERE id = ?", (c, b))  # damaged by hand
    with pytest.raises(RunDirectoryError, match=r"lineage\.sqlite is corrupt: .* 2, 3 loop"):
        Lineage.from_run(tmp_path)


def test_graphml_export_has_the_registry_nodes_and_edges(run: Path, tmp_path: Path) -> None:
    path = export_lineage(Lineage.from_run(run), tmp_path / "lineage.graphml", "graphml")
    graph = nx.read_graphml(path, node_type=int)
    with LineageRegistry(run, readonly=True) as registry:
        records = registry.candidates()
        assert set(graph.nodes) == {r.id for r in records}
        assert set(graph.edges) == {(r.parent, r.id) for r in records if r.parent is not None}
        for r in records:
            node = graph.nodes[r.id]
            assert node["status"] == r.status
            assert node["arch"] == ",".join(map(str, r.arch))
            if r.status == "ok":
                assert node["objective"] == pytest.approx(r.objective)
            else:
                assert "objective" not in node
            if r.parent is not None:
                edge = graph.edges[r.parent, r.id]
                assert edge["tensors"].split(",") == list(r.transferred)
                assert edge["frac_params_transferred"] == pytest.approx(r.frac_params_transferred)
    assert nx.is_forest(graph)
    assert lineage_graph(Lineage.from_run(run)).number_of_nodes() == 60


def test_dot_export_has_one_edge_per_inheritance(run: Path, tmp_path: Path) -> None:
    text = export_lineage(Lineage.from_run(run), tmp_path / "lineage.dot", "dot").read_text()
    assert text.startswith("digraph lineage {") and text.rstrip().endswith("}")
    edges = set(map(tuple, re.findall(r"^\s+(\d+) -> (\d+) ", text, re.MULTILINE)))
    with LineageRegistry(run, readonly=True) as registry:
        expected = {(str(r.parent), str(r.id)) for r in registry if r.parent is not None}
    assert edges == expected
    assert len(re.findall(r"^\s+\d+ \[label=", text, re.MULTILINE)) == 60


def test_cli_lineage_candidate_stats_and_export(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = Lineage.from_run(run)
    assert main(["lineage", str(run), "--candidate", "59"]) == 0
    assert capsys.readouterr().out.strip() == format_ancestry(lineage, 59)
    assert main(["lineage", str(run), "--stats", "--window", "7"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == format_lineage_stats(lineage, 7)
    top_donor, children = next(iter(lineage.donor_counts().items()))
    assert re.search(rf"^\s+{top_donor}\s+{children}\s", out, re.MULTILINE)
    # one line per window that does not overlap the previous one, then the last window
    assert "candidates 1-7:" in out and "candidates 50-56:" in out
    assert out.rstrip().splitlines()[-1].startswith("  candidates 54-60:")
    # without --window, the windows are the run's population size
    assert main(["lineage", str(run), "--stats"]) == 0
    assert "each window of 4 candidates" in capsys.readouterr().out
    out_file = tmp_path / "exported.graphml"
    assert main(["lineage", str(run), "--export", "graphml", "--output", str(out_file)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out_file}"
    assert nx.read_graphml(out_file).number_of_nodes() == 60
    assert main(["lineage", str(run), "--candidate", "61"]) == 2
    assert "no candidate 61" in capsys.readouterr().err
