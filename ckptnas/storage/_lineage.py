"""The lineage registry: every candidate, who it inherited from, and how it ended, in SQLite.

``<run_dir>/lineage.sqlite`` is the durable record of a run. Only the client writes it; each
change is one transaction, so the file is consistent at every moment and a killed client loses
nothing it had recorded. A candidate's ``parent`` is the donor whose tensors it copied (``NULL``
when it trained from scratch); a donor is always a candidate that finished before the child was
submitted, so the parent links form a forest of trees. A parent from an earlier run
(``[transfer] donor_runs``) is that run's candidate, with the run in ``parent_run``: in this
run's forest its child is a root. Finding a donor is the search's job
(:class:`ckptnas.search.DonorIndex`, built from :meth:`LineageRegistry.candidates`).
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ckptnas.errors import RunDirectoryError
from ckptnas.space import space_from_dict
from ckptnas.storage._lineage_reads import LineageReads
from ckptnas.storage._lineage_schema import MIGRATIONS, SCHEMA
from ckptnas.storage._records import CandidateOutcome, RunMeta, Transfer
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._sqlite import (
    RUN_COLUMNS_SQL,
    run_columns,
    to_sql,
)
from ckptnas.storage._states import CandidateStatus, Deletion


class LineageRegistry(LineageReads):
    """The SQLite record of a run's candidates and their lineage.

    Parameters
    ----------
    run_dir : str, Path or RunDir
        The run directory; the database is ``lineage.sqlite`` inside it.
    readonly : bool
        Open without creating or changing anything.
    untouched : bool
        With ``readonly``, create no file beside it either (see :class:`Database`).

    Examples
    --------
    >>> reg = LineageRegistry(run_dir)               # doctest: +SKIP
    >>> reg.parent(12), reg.ancestors(12), reg.children(3)  # doctest: +SKIP
    """

    FILE = RunDir.LINEAGE
    SCHEMA = SCHEMA
    VERSION = 6
    MIGRATIONS: ClassVar[dict[int, tuple[tuple[str, str, str], ...]]] = MIGRATIONS
    CURVE_OWNER = "candidate"
    DESCRIPTION = "lineage registry"

    def __init__(
        self, run_dir: str | Path | RunDir, readonly: bool = False, *, untouched: bool = False
    ) -> None:
        super().__init__(run_dir, readonly, untouched=untouched)
        # The id of each candidate a write of this object changed, in order: what a reader in
        # the same process that keeps its own copy (the results writer) reads again, rather
        # than every row at each write (0.7 s for 20,000 candidates, growing with the run).
        self._changed = array("q")

    @staticmethod
    def file_in(run: RunDir) -> Path:
        """``lineage.sqlite``."""
        return run.lineage

    def changes(self, since: int = 0) -> tuple[set[int], int]:
        """The candidates this object changed after position ``since`` of its log, and its end.

        A reader first takes the end (``changes()[1]``), reads what it needs, and later asks
        for what changed since: written through this object only (another process's writes
        are not seen), rolled-back writes included (reading them again is harmless).
        """
        end = len(self._changed)
        return set(self._changed[since:end]), end

    # -- metadata --------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        """Store a run-level value (the resolved config, the search space, ...)."""
        self.set_meta_many({key: value})

    def set_meta_many(self, values: dict[str, str]) -> None:
        """Store several run-level values in one transaction."""
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def describe(self, meta: RunMeta) -> None:
        """Record the run's description in one transaction (``created`` only the first time)."""
        values = meta.values()
        if self.get_meta("created") is None:  # kept when the run is resumed
            values["created"] = meta.created
        self.set_meta_many(values)

    def get_meta(self, key: str) -> str | None:
        """A run-level value, or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def recorded_space(self) -> dict[str, Any]:
        """The search space the run recorded, as its ``to_dict`` wrote it.

        A built-in space is rebuilt here once (and kept for the caller's ``space_from_dict``),
        so a record of the wrong shape is told naming this file; a pickle is not run here.

        Raises
        ------
        RunDirectoryError
            If the run recorded none (it stopped before its first candidate), or what it
            recorded is not a search space.
        """
        text = self.get_meta("space") or "{}"
        try:
            meta = json.loads(text)
            if not isinstance(meta, dict):
                raise TypeError(f"{type(meta).__name__} is not a JSON object")
        except (ValueError, TypeError) as exc:
            raise RunDirectoryError(
                f"{self.path} is corrupt: its recorded search space cannot be read ({exc})"
            ) from None
        meta.pop("node_names", None)
        if not meta:
            raise RunDirectoryError(f"{self.path} records no search space")
        try:
            if meta.get("kind") != "pickled":
                space_from_dict(meta)
            elif not all(isinstance(meta.get(k), str) for k in ("digest", "pickle")):
                raise RunDirectoryError("its recorded search space, a pickle, lacks its bytes")
        except RunDirectoryError as exc:
            raise RunDirectoryError(f"{self.path} is corrupt: {exc}") from None
        return meta

    # -- writing (client only) -------------------------------------------------------------
    def add_candidate(  # noqa: PLR0913  # one column each
        self,
        arch: Sequence[int],
        plan: Transfer,
        n_params: int,
        note: str = "",
        hyperparameters: Mapping[str, float] | None = None,
        target_epochs: int = 0,
        stage: str = "",
    ) -> int:
        """Record a candidate about to be submitted; returns its id.

        ``stage`` is the stage of the search its strategy proposed it in (``random``,
        ``mutation``, ...).
        """
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO candidates (arch, status, parent, transferred, prefix_length,"
                " n_params, n_params_transferred, submit_time, note, hyperparameters,"
                " target_epochs, stage, parent_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    json.dumps(list(arch)),
                    CandidateStatus.PENDING,
                    plan.donor if plan.is_warm else None,
                    json.dumps(list(plan.tensors)),
                    plan.prefix_length,
                    n_params,
                    plan.n_params,
                    time.time(),
                    note,
                    json.dumps(dict(hyperparameters or {})),
                    target_epochs,
                    stage,
                    plan.run if plan.is_warm else "",
                ),
            )
        assert cur.lastrowid is not None
        self._changed.append(cur.lastrowid)
        return cur.lastrowid

    def record(self, result: CandidateOutcome, continued: bool = False) -> None:
        """Record a finished (or failed) candidate and its per-epoch curves in one transaction.

        ``continued`` records a candidate trained on from its checkpoint (its whole curve):
        that is no new attempt.
        """
        plan = result.plan
        self._changed.append(result.candidate_id)
        with self._transaction():
            self._replace_curves(result.candidate_id, result)
            self._db.execute(
                "UPDATE candidates SET status = ?, objective = ?, parent = ?, transferred = ?,"
                " prefix_length = ?, n_params_transferred = ?, attempts = attempts + ?,"
                " latency = ?, objective_values = ?, parent_run = ?, "
                f"{RUN_COLUMNS_SQL} WHERE id = ?",
                (
                    result.status,
                    to_sql(result.objective),
                    plan.donor if plan.is_warm else None,
                    json.dumps(list(plan.tensors)),
                    plan.prefix_length,
                    plan.n_params,
                    0 if continued else 1,
                    to_sql(result.latency),
                    json.dumps([to_sql(v) for v in result.objective_values]),
                    plan.run if plan.is_warm else "",
                    *run_columns(result),
                    result.candidate_id,
                ),
            )

    def set_target_epochs(self, candidate_id: int, epochs: int) -> None:
        """Record the epochs a candidate is now to reach (it is being continued, say)."""
        self._changed.append(candidate_id)
        with self._transaction():
            self._db.execute(
                "UPDATE candidates SET target_epochs = ? WHERE id = ?", (epochs, candidate_id)
            )

    def add_note(self, candidate_id: int, note: str) -> None:
        """Append a line to a candidate's note (why it fell back to another donor, say)."""
        with self._transaction():
            self._append_note(candidate_id, note)

    def count_failed_attempt(self, candidate_id: int, reason: str) -> None:
        """Count an attempt that ended without a result (a killed worker) and note why."""
        with self._transaction():
            self._db.execute(
                "UPDATE candidates SET attempts = attempts + 1 WHERE id = ?", (candidate_id,)
            )
            self._append_note(candidate_id, reason)

    def mark_unusable(self, candidate_id: int, reason: str) -> None:
        """Record that a candidate must never again serve as a donor (its checkpoint is broken)."""
        with self._transaction():
            self._db.execute("UPDATE candidates SET donor_usable = 0 WHERE id = ?", (candidate_id,))
            self._changed.append(candidate_id)
            self._append_note(candidate_id, f"not a donor: {reason}")

    def mark_deleted(self, candidate_ids: Sequence[int], reason: Deletion) -> None:
        """Record that these candidates' checkpoints are deleted, before their files go.

        They are no donors any more either (``donor_usable``), so that no run, resumed or
        reading this one as a donor run, plans from them.
        """
        now = time.time()
        self._changed.extend(candidate_ids)
        with self._transaction():
            self._db.executemany(
                "UPDATE candidates SET checkpoint_deleted = ?, deleted_time = ?, donor_usable = 0"
                " WHERE id = ?",
                [(str(reason), now, cid) for cid in candidate_ids],
            )

    def deletions(self) -> dict[str, int]:
        """How many candidates' checkpoints were deleted, by why (none in older files)."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(candidates)")}
        if "checkpoint_deleted" not in have:
            return {}
        rows = self._db.execute(
            "SELECT checkpoint_deleted, count(*) FROM candidates WHERE checkpoint_deleted != ''"
            " GROUP BY checkpoint_deleted"
        )
        return {str(reason): int(n) for reason, n in rows}

    def _append_note(self, candidate_id: int, note: str) -> None:
        self._changed.append(candidate_id)
        self._db.execute(
            "UPDATE candidates SET note = ltrim(note || char(10) || ?, char(10)) WHERE id = ?",
            (note, candidate_id),
        )

    # -- lineage ---------------------------------------------------------------------------
    def parent(self, candidate_id: int) -> int | None:
        """The donor of this run a candidate inherited from, or ``None`` if there is none.

        A parent of an earlier run is in the candidate's record (``parent``, ``parent_run``).
        """
        record = self.get(candidate_id)
        return None if record.parent_run else record.parent

    def ancestors(self, candidate_id: int) -> list[int]:
        """Parent, grandparent, ... up to a candidate trained from scratch.

        Raises
        ------
        RunDirectoryError
            If the parent links loop (a registry edited or damaged by hand): a walk up a
            lineage always ends.
        """
        parents = self._parents()
        chain: list[int] = []
        seen, node = {candidate_id}, parents.get(candidate_id)
        while node is not None:
            if node in seen:
                loop = " <- ".join(map(str, [candidate_id, *chain, node]))
                raise RunDirectoryError(f"{self.path} is corrupt: parent links loop ({loop})")
            chain.append(node)
            seen.add(node)
            node = parents.get(node)
        return chain

    def forest(self) -> dict[int | None, list[int]]:
        """Parent id (``None`` for the roots, trained from scratch) to its children, in id order.

        Raises
        ------
        RunDirectoryError
            If some candidates cannot be reached from a root: their parent links loop.
        """
        parents = self._parents()
        children: dict[int | None, list[int]] = {}
        for cid, parent in parents.items():
            children.setdefault(parent if parent in parents else None, []).append(cid)
        reached, todo = set(), list(children.get(None, []))
        while todo:
            cid = todo.pop()
            reached.add(cid)
            todo.extend(children.get(cid, []))
        if lost := sorted(set(parents) - reached):
            raise RunDirectoryError(
                f"{self.path} is corrupt: the parent links of candidates "
                f"{', '.join(map(str, lost))} loop and reach no candidate trained from scratch"
            )
        return children

    def _parents(self) -> dict[int, int | None]:
        """Each candidate's parent in this run: one of an earlier run makes it a root here."""
        rows = self._db.execute("SELECT * FROM candidates ORDER BY id")
        return {r["id"]: None if self.column(r, "parent_run", "") else r["parent"] for r in rows}

    def children(self, candidate_id: int) -> list[int]:
        """Candidates of this run that inherited from this one, in id order."""
        return [cid for cid, parent in self._parents().items() if parent == candidate_id]
