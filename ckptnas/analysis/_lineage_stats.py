"""Lineage analytics: ancestries with what each step transferred, depths, donor popularity.

:class:`Lineage` reads the parent links of a run's candidates (the records of its
:class:`~ckptnas.storage.LineageRegistry`) and answers the questions the report's figures and
``ckptnas lineage --candidate/--stats`` ask. It needs neither xarray nor torch, so it answers
at once on a login node, and walks every lineage with explicit stacks: a long search's lineage
can be thousands of generations deep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckptnas.errors import RunDirectoryError
from ckptnas.storage import CandidateRecord, CandidateStatus, LineageRegistry


def plural(n: int, noun: str) -> str:
    """``1 tensor``, ``2 tensors``, ``1 child``, ``3 children``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {'children' if noun == 'child' else noun + 's'}"


@dataclass(frozen=True)
class Inheritance:
    """One step of an ancestry: what a candidate took from its donor.

    Attributes
    ----------
    candidate : int
    donor : int or None
        ``None`` when the candidate trained from scratch.
    prefix_length : int
        Architecture choices the candidate shares with its donor.
    tensors : tuple of str
        Names of the tensors copied from the donor.
    n_params, n_params_transferred : int
        The candidate's scalars, and how many of them came from the donor.
    objective : float
        The candidate's objective (NaN while pending or when failed).
    donor_label : str
        The donor as shown: ``run:id`` for a candidate of an earlier run, where ``run`` is
        its run directory's name (empty in records made before runs could have such donors).
    """

    candidate: int
    donor: int | None
    prefix_length: int
    tensors: tuple[str, ...]
    n_params: int
    n_params_transferred: int
    objective: float
    donor_label: str = ""

    @classmethod
    def of(cls, record: CandidateRecord) -> Inheritance:
        """The step a registry record describes."""
        return cls(
            candidate=record.id,
            donor=record.parent,
            donor_label=record.parent_label,
            prefix_length=record.prefix_length,
            tensors=record.transferred,
            n_params=record.n_params,
            n_params_transferred=record.n_params_transferred,
            objective=record.objective,
        )

    @property
    def frac_params_transferred(self) -> float:
        """Share of the candidate's scalars copied from its donor."""
        return self.n_params_transferred / self.n_params if self.n_params else 0.0

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers of the copied tensors (``trunk.0`` for ``trunk.0.weight``), in order."""
        return tuple(dict.fromkeys(name.rpartition(".")[0] or name for name in self.tensors))

    def describe(self) -> str:
        """One line: the donor, how much came from it and which layers."""
        if self.donor is None:
            return f"{self.candidate} trained from scratch"
        return (
            f"{self.candidate} took {plural(len(self.tensors), 'tensor')} from "
            f"{self.donor_label or self.donor} "
            f"({self.frac_params_transferred:.0%} of its {self.n_params:,} parameters, "
            f"{plural(self.prefix_length, 'choice')} shared): {', '.join(self.layers)}"
        )


@dataclass(frozen=True)
class DonorWindows:
    """How often each donor was drawn on within a sliding window of consecutive candidates.

    Attributes
    ----------
    window : int
        Candidates per window.
    candidates : ndarray of int, shape (n,)
        The last candidate (in id order) of each window.
    donors : ndarray of int, shape (d,)
        The donors that were the most drawn-on of at least one window, most used overall
        first.
    counts : ndarray of int, shape (n, d)
        ``counts[i, j]``: children of ``donors[j]`` among the ``window`` candidates ending at
        ``candidates[i]`` (fewer at the start of the run).
    """

    window: int
    candidates: np.ndarray
    donors: np.ndarray
    counts: np.ndarray

    def leaders(self) -> list[tuple[int, int, int]]:
        """Per window, the most drawn-on donor: ``(last candidate, donor, children)``.

        Windows in which no candidate had a donor are left out.
        """
        out = []
        for candidate, row in zip(self.candidates, self.counts, strict=True):
            if row.size and row.max() > 0:
                j = int(np.argmax(row))  # ties go to the donor used more overall
                out.append((int(candidate), int(self.donors[j]), int(row[j])))
        return out


class Lineage:
    """The inheritance forest of a run, for analysis.

    Parameters
    ----------
    records : iterable of CandidateRecord
        Every candidate of a run, as :meth:`LineageRegistry.candidates` gives them. A parent
        missing from ``records`` makes its child a root.

    Raises
    ------
    RunDirectoryError
        If parent links loop (a registry edited or damaged by hand).

    Examples
    --------
    >>> lineage = Lineage.from_run("runs/quickstart")            # doctest: +SKIP
    >>> [step.describe() for step in lineage.ancestry(25)]       # doctest: +SKIP
    >>> lineage.depth_distribution(), lineage.donor_counts()     # doctest: +SKIP
    """

    def __init__(self, records: Iterable[CandidateRecord]) -> None:
        self.records = {r.id: r for r in sorted(records, key=lambda r: r.id)}
        self.children: dict[int | None, list[int]] = {}
        for r in self.records.values():
            self.children.setdefault(self.parent_of(r), []).append(r.id)
        self.depths = self._depths()

    @classmethod
    def from_registry(cls, registry: LineageRegistry) -> Lineage:
        """The lineage of every candidate an open registry holds.

        Raises
        ------
        RunDirectoryError
            Naming the registry's file, if its parent links loop.
        """
        # A row that cannot be read names the file itself.
        return cls.of_registry(registry, registry.candidates())

    @classmethod
    def of_registry(cls, registry: LineageRegistry, records: Iterable[CandidateRecord]) -> Lineage:
        """The lineage of some of a registry's candidates (their parents left out: roots).

        Raises
        ------
        RunDirectoryError
            Naming the registry's file, if its parent links loop.
        """
        try:
            return cls(records)
        except RunDirectoryError as exc:
            raise RunDirectoryError(f"{registry.path} is corrupt: {exc}") from None

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Lineage:
        """The lineage of a run directory, read without changing it."""
        with LineageRegistry(run_dir, readonly=True) as registry:
            return cls.from_registry(registry)

    def __len__(self) -> int:
        return len(self.records)

    def _depths(self) -> dict[int, int]:
        depths: dict[int, int] = {}
        todo = [(root, 0) for root in self.children.get(None, [])]
        while todo:
            cid, depth = todo.pop()
            depths[cid] = depth
            todo.extend((child, depth + 1) for child in self.children.get(cid, []))
        if lost := sorted(set(self.records) - set(depths)):
            raise RunDirectoryError(
                f"the parent links of candidates {', '.join(map(str, lost))} loop and reach no "
                "candidate trained from scratch"
            )
        return depths

    def parent(self, candidate_id: int) -> int | None:
        """The donor of a candidate, ``None`` for a root (trained from scratch)."""
        return self.parent_of(self.records[candidate_id])

    def parent_of(self, record: CandidateRecord) -> int | None:
        """A record's donor in this run: ``None`` for a root, or a parent of an earlier run."""
        in_run = record.parent in self.records and not record.parent_run
        return record.parent if in_run else None

    def ancestry(self, candidate_id: int) -> list[Inheritance]:
        """The candidate, its donor, the donor's donor, ... down to one trained from scratch.

        Raises
        ------
        KeyError
            If the run has no such candidate.
        """
        steps = []
        node: int | None = candidate_id
        while node is not None:
            steps.append(Inheritance.of(self.records[node]))
            node = self.parent(node)
        return steps

    def depth_distribution(self) -> dict[int, int]:
        """Generations from a candidate trained from scratch (0) to number of candidates."""
        counts = Counter(self.depths.values())
        return {depth: counts[depth] for depth in sorted(counts)}

    def donor_counts(self) -> dict[int, int]:
        """Donor id to the number of candidates that inherited from it, most used first."""
        counts = Counter(self.parent(cid) for cid in self.records)
        counts.pop(None, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return {int(donor): n for donor, n in ranked if donor is not None}

    def donor_windows(self, window: int) -> DonorWindows:
        """Donor popularity within each ``window`` consecutive candidates (in id order).

        Only the donors that lead some window are counted: a dense count of every donor in
        every window grows with the square of the run (1.6 GB of counts for 20,000
        candidates, and a peak of 5.3 GB for the sums), while the leaders are few.

        Parameters
        ----------
        window : int
            Candidates per window, at least 1; the population size of an evolution is a
            natural choice (its members age out after as many candidates).
        """
        if window < 1:
            raise ValueError(f"window must be >= 1, not {window}")
        ids = np.array(list(self.records), dtype=np.int64)
        parents = [self.parent(int(cid)) for cid in ids]
        rank = {donor: k for k, donor in enumerate(self.donor_counts())}
        leaders = self._window_leaders(parents, window, rank)
        donors = np.array(sorted(set(leaders), key=rank.__getitem__), dtype=np.int64)
        column = {int(d): j for j, d in enumerate(donors)}
        drew = np.zeros((len(ids), len(donors)), dtype=np.int64)
        for i, parent in enumerate(parents):
            if parent in column:
                drew[i, column[parent]] = 1
        # A running sum minus the same sum ``window`` rows earlier: every window in one pass.
        total = np.cumsum(drew, axis=0)
        earlier = np.zeros_like(total)
        earlier[window:] = total[:-window]
        return DonorWindows(window, ids, donors, total - earlier)

    @staticmethod
    def _window_leaders(parents: list[int | None], window: int, rank: dict[int, int]) -> list[int]:
        """The most drawn-on donor of each window (ties: the one used more overall)."""
        inside: Counter[int] = Counter()
        leaders = []
        for i, parent in enumerate(parents):
            if parent is not None:
                inside[parent] += 1
            if i >= window and (gone := parents[i - window]) is not None:
                inside[gone] -= 1
                if not inside[gone]:
                    del inside[gone]
            if inside:
                leaders.append(min(inside, key=lambda d: (-inside[d], rank[d])))
        return leaders

    def layout(self) -> dict[int, tuple[float, float]]:
        """Tidy tree positions: ``(generation, row)``, leaves on consecutive rows.

        Each parent sits at the mean row of its children; roots follow each other in id order.
        """
        pos: dict[int, tuple[float, float]] = {}
        next_row = 0.0
        # Post-order with an explicit stack: a node is placed once all its children are.
        todo: list[tuple[int, bool]] = [(r, False) for r in reversed(self.children.get(None, []))]
        while todo:
            cid, expanded = todo.pop()
            kids = self.children.get(cid, [])
            if not kids:
                pos[cid] = (float(self.depths[cid]), next_row)
                next_row += 1
            elif expanded:
                row = float(np.mean([pos[k][1] for k in kids]))
                pos[cid] = (float(self.depths[cid]), row)
            else:
                todo.append((cid, True))
                todo.extend((k, False) for k in reversed(kids))
        return pos


def format_ancestry(lineage: Lineage, candidate_id: int) -> str:
    """The text of ``ckptnas lineage --candidate``: the chain, then what each step took.

    The first line is the chain (``25 <- 19 <- 8``); each next line one step, from the
    candidate down to the ancestor trained from scratch.
    """
    steps = lineage.ancestry(candidate_id)
    chain = " <- ".join(str(step.candidate) for step in steps)
    return "\n".join([chain, *(step.describe() for step in steps)])


def format_lineage_tree(lineage: Lineage) -> str:
    """The text of ``ckptnas lineage``: each candidate indented under its donor.

    A line holds the candidate's id, its objective (or status) and how many tensors it took.
    """
    lines = []
    # Depth-first with an explicit stack: a lineage can be thousands of generations deep.
    stack = [(root, 0) for root in reversed(lineage.children.get(None, []))]
    while stack:
        cid, depth = stack.pop()
        r = lineage.records[cid]
        score = f"{r.objective:.4f}" if r.status == CandidateStatus.OK else str(r.status)
        took = f" took {len(r.transferred)} tensors" if r.parent is not None else ""
        took += f" from {r.parent_label}" if r.parent_run else ""
        lines.append(f"{'  ' * depth}{cid} [{score}]{took}")
        stack.extend((child, depth + 1) for child in reversed(lineage.children.get(cid, [])))
    return "\n".join(lines)


def format_lineage_stats(lineage: Lineage, window: int, top: int = 10) -> str:
    """The text of ``ckptnas lineage --stats``: depths, the most used donors, per window.

    Parameters
    ----------
    lineage : Lineage
    window : int
        Candidates per sliding window.
    top : int
        How many donors to list.
    """
    lines = ["depth (generations from a candidate trained from scratch): candidates"]
    lines += [f"{depth:>5}: {n}" for depth, n in lineage.depth_distribution().items()]
    counts = lineage.donor_counts()
    lines += ["", f"donors: {len(counts)} of {len(lineage)} candidates served as donor"]
    if counts:
        lines.append(f"{'donor':>7} {'children':>8} {'objective':>10} {'depth':>5}")
        for donor, n in list(counts.items())[:top]:
            objective = lineage.records[donor].objective
            lines.append(f"{donor:>7} {n:>8} {objective:>10.4f} {lineage.depths[donor]:>5}")
        lines += ["", f"most drawn-on donor in each window of {window} candidates:"]
        lines += _window_lines(lineage.donor_windows(window))
    return "\n".join(lines)


def _window_lines(windows: DonorWindows) -> list[str]:
    """One line per window that does not overlap the previous one, and one for the last."""
    ids = [int(c) for c in windows.candidates]
    leaders = {c: (d, n) for c, d, n in windows.leaders()}
    ends = list(range(windows.window - 1, len(ids), windows.window))
    if ids and (not ends or ends[-1] != len(ids) - 1):
        ends.append(len(ids) - 1)
    lines = []
    for end in ends:
        first, last = ids[max(0, end - windows.window + 1)], ids[end]
        leader = leaders.get(last)
        what = f"donor {leader[0]} ({plural(leader[1], 'child')})" if leader else "no donor"
        lines.append(f"  candidates {first}-{last}: {what}")
    return lines
