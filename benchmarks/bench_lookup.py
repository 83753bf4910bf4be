"""Donor look-up in registries of 10, 1,000 and 100,000 trained candidates.

The registries are SQLite files written once in ``setup_cache`` by bulk inserts into the table
:class:`~ckptnas.storage.LineageRegistry` creates (recording 100,000 candidates one transaction
at a time would take minutes and measure nothing of the look-up). Their architectures come from
an evolution-like process on the quickstart space: mostly one-node mutations (bias 1, as in the
quickstart) of earlier candidates, some fresh samples, so prefixes are shared as in a real run.
The look-up itself is the real path: ``DonorIndex.best_donor(arch)`` on the in-memory prefix
tree that a run rebuilds from its registry when it starts, then one SQLite read of the donor.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from ckptnas.search import DonorIndex
from ckptnas.space import Architecture, SearchSpace
from ckptnas.storage import LineageRegistry

from ._common import quickstart, smoke

SIZES = smoke((10, 1_000, 100_000), (10, 1_000))


def _registry_dir(n: int) -> Path:
    return Path(f"registry-{n}").resolve()


def _evolve(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Architecture]:
    archs: list[Architecture] = []
    seen: set[Architecture] = set()
    while len(archs) < n:
        if len(archs) < 10 or rng.random() < 0.1:
            arch = space.sample(rng)
        else:
            arch = space.mutate(archs[int(rng.integers(len(archs)))], rng, bias=1.0)
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    return archs


def fill_registry(run_dir: Path, archs: list[Architecture], rng: np.random.Generator) -> None:
    """Write ``archs`` as successfully trained candidates with random objectives."""
    LineageRegistry(run_dir).close()  # creates the schema
    rows = [
        (i + 1, json.dumps(list(a)), float(rng.random()), 1000, 0.0) for i, a in enumerate(archs)
    ]
    with sqlite3.connect(run_dir / "lineage.sqlite") as db:
        db.executemany(
            "INSERT INTO candidates (id, arch, status, objective, n_params, submit_time)"
            " VALUES (?, ?, 'ok', ?, ?, ?)",
            rows,
        )


def query_of(space: SearchSpace, archs: list[Architecture]) -> Architecture:
    """A new candidate as a search would propose it: a late-node mutation of a recent one."""
    rng = np.random.default_rng(1)
    while True:
        arch = space.mutate(archs[-1], rng, bias=1.0)
        if arch not in archs:
            return arch


def open_run(n: int) -> tuple[LineageRegistry, DonorIndex]:
    """The registry of ``n`` candidates and the donor index a run builds from it."""
    registry = LineageRegistry(_registry_dir(n))
    return registry, DonorIndex.from_records(registry.candidates("ok"))


class DonorLookup:
    """``best_donor`` on registries of 10, 1,000 and 100,000 candidates."""

    params = SIZES
    param_names = ("candidates",)
    timeout = 600

    def setup_cache(self) -> dict[int, Architecture]:
        space = quickstart().space
        queries = {}
        for n in SIZES:
            rng = np.random.default_rng(n)
            archs = _evolve(space, n, rng)
            fill_registry(_registry_dir(n), archs, rng)
            queries[n] = query_of(space, archs)
        return queries

    def setup(self, queries: dict[int, Architecture], n: int) -> None:
        self.registry, self.donors = open_run(n)
        self.query = queries[n]
        assert len(self.registry) == n == len(self.donors)

    def teardown(self, queries: dict[int, Architecture], n: int) -> None:
        self.registry.close()

    def time_best_donor(self, queries: dict[int, Architecture], n: int) -> None:
        """One donor look-up (prefix tree walk plus one SQLite read of the donor's record).

        Good: under 1 ms at every size, and roughly flat in the number of candidates.
        """
        match = self.donors.best_donor(self.query)
        assert match is not None
        self.registry.get(match[0])

    def time_open_registry(self, queries: dict[int, Architecture], n: int) -> None:
        """Opening the registry and rebuilding the donor index (paid once per run or resume).

        Good: linear in the candidates, a second or less at 100,000.
        """
        open_run(n)[0].close()

    def peakmem_open_registry(self, queries: dict[int, Architecture], n: int) -> None:
        """Peak memory of a process holding an open registry and its donor index.

        Good: the interpreter and torch (a few hundred MB) plus well under 1 kB per candidate.
        """
        open_run(n)[0].close()
