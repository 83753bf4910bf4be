"""Reading the lineage registry: candidates whole, by id, the latest, the best, and counts.

What a report or a results writer reads while a search runs must not grow with the run: the
queries here read the candidates asked for (by id, the latest ``n``, the best ``n``) or let
SQLite count, rather than turning every row into a record each time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator

from ckptnas.errors import RunDirectoryError
from ckptnas.storage._records import CandidateRecord
from ckptnas.storage._sqlite import Curve, Database, from_sql, record_from_row
from ckptnas.storage._states import CandidateStatus

#: Ids per ``IN (...)`` query: well under SQLite's limit of bound parameters.
_CHUNK = 500


class LineageReads(Database):
    """The read queries of :class:`~ckptnas.storage.LineageRegistry`."""

    def _record(self, row: sqlite3.Row) -> CandidateRecord:
        try:
            hyperparameters = json.loads(self.column(row, "hyperparameters", "{}"))
            if not isinstance(hyperparameters, dict):
                raise TypeError(f"hyperparameters {hyperparameters!r} are not a mapping")
            return record_from_row(
                CandidateRecord,
                row,
                arch=tuple(int(a) for a in json.loads(row["arch"])),
                status=CandidateStatus(row["status"]),
                transferred=tuple(str(t) for t in json.loads(row["transferred"])),
                donor_usable=bool(row["donor_usable"]),
                hyperparameters=hyperparameters,
                target_epochs=int(self.column(row, "target_epochs", 0)),
                latency=from_sql(self.column(row, "latency", None)),
                stage=str(self.column(row, "stage", "")),
                objective_values=tuple(
                    from_sql(v) for v in json.loads(self.column(row, "objective_values", "[]"))
                ),
                parent_run=str(self.column(row, "parent_run", "")),
                checkpoint_deleted=str(self.column(row, "checkpoint_deleted", "")),
                deleted_time=from_sql(self.column(row, "deleted_time", None)),
            )
        except (ValueError, TypeError) as exc:
            raise RunDirectoryError(
                f"{self.path} is corrupt: the row of candidate {row['id']} cannot be read "
                f"({type(exc).__name__}: {exc})"
            ) from None

    def get(self, candidate_id: int) -> CandidateRecord:
        """One candidate's record; ``KeyError`` if there is none."""
        row = self._db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise KeyError(f"no candidate {candidate_id} in {self.path}")
        return self._record(row)

    def candidates(self, status: CandidateStatus | None = None) -> list[CandidateRecord]:
        """All candidates in id order, or those with one status."""
        if status is None:
            rows = self._db.execute("SELECT * FROM candidates ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM candidates WHERE status = ? ORDER BY id", (status,)
            )
        return [self._record(r) for r in rows]

    def finished(self) -> dict[int, tuple[CandidateStatus, int, float]]:
        """Each finished candidate's status, epochs recorded and objective, by id (one query).

        What a follower of the run compares with what it saw, to read only what changed.
        """
        rows = self._db.execute(
            "SELECT id, status, objective, (SELECT count(*) FROM epochs e WHERE e.candidate = c.id)"
            " FROM candidates c WHERE status != 'pending' ORDER BY id"
        )
        return {int(i): (CandidateStatus(s), int(n), from_sql(o)) for i, s, o, n in rows}

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM candidates").fetchone()[0])

    def __iter__(self) -> Iterator[CandidateRecord]:
        return iter(self.candidates())

    def curves(self) -> dict[int, list[Curve]]:
        """Candidate id to its per-epoch ``(train_loss, val_loss, val_metric, epoch_time)``."""
        return self._curves()

    def curve(self, candidate_id: int) -> list[Curve]:
        """One candidate's per-epoch ``(train_loss, val_loss, val_metric, epoch_time)``."""
        return self._curves(candidate_id).get(candidate_id, [])

    def candidates_of(self, ids: Iterable[int]) -> list[CandidateRecord]:
        """The records of these candidates, in id order (ids the registry lacks are skipped)."""
        return [self._record(r) for r in self._rows_of("candidates", "id", "id", ids)]

    def latest(self, n: int) -> list[CandidateRecord]:
        """The ``n`` candidates registered last, in id order."""
        rows = self._db.execute("SELECT * FROM candidates ORDER BY id DESC LIMIT ?", (n,))
        return sorted((self._record(r) for r in rows), key=lambda r: r.id)

    def best(self, n: int) -> list[CandidateRecord]:
        """The ``n`` successful candidates of the highest objective, best first."""
        rows = self._db.execute(
            "SELECT * FROM candidates WHERE status = ? ORDER BY objective DESC, id LIMIT ?",
            (CandidateStatus.OK, n),
        )
        return [self._record(r) for r in rows]

    def status_counts(self) -> dict[CandidateStatus, int]:
        """How many candidates have each status (counted by SQLite, every status present)."""
        counts = dict.fromkeys(CandidateStatus, 0)
        for status, n in self._db.execute("SELECT status, count(*) FROM candidates GROUP BY 1"):
            counts[CandidateStatus(status)] = int(n)
        return counts

    def curves_of(self, ids: Iterable[int]) -> dict[int, list[Curve]]:
        """The per-epoch curves of these candidates, by id (those with none are left out)."""
        out: dict[int, list[Curve]] = {}
        for row in self._rows_of("epochs", "candidate", "candidate, epoch", ids):
            out.setdefault(row["candidate"], []).append(self._curve_row(row))
        return out

    def _rows_of(
        self, table: str, column: str, order: str, ids: Iterable[int]
    ) -> Iterator[sqlite3.Row]:
        """The rows of ``table`` whose ``column`` is one of ``ids``, ordered by ``order``.

        Asked in chunks of :data:`_CHUNK` ids, so that any number stays under SQLite's limit
        of bound parameters; the ids are sorted first, so the order holds across chunks.
        """
        wanted = sorted(set(ids))
        for k in range(0, len(wanted), _CHUNK):
            chunk = wanted[k : k + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT * FROM {table} WHERE {column} IN ({marks}) ORDER BY {order}", chunk
            )
