"""The lineage of full-training runs: which search candidate each one trained, and from what.

``<run_dir>/topk.sqlite`` holds one row per full-training run of a search candidate, keyed by
``(candidate, init)``: the candidate's id in the search (its parent in this lineage), how it was
initialised (``scratch``: random weights; ``checkpoint``: the weights the search left in the
candidate's checkpoint, whose digest is recorded), the candidate's own ancestry in the search,
and the run's per-epoch curves. Like :class:`~ckptnas.storage.LineageRegistry`, only the client
writes it and each change is one transaction. A finished run is never overwritten.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ckptnas.storage import _sqlite as sql
from ckptnas.storage._records import FullTrainOutcome
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._states import CandidateStatus, Init

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    candidate INTEGER NOT NULL,
    init TEXT NOT NULL CHECK (init IN ('scratch', 'checkpoint')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed')),
    search_objective REAL,
    source_digest TEXT,
    ancestors TEXT NOT NULL DEFAULT '[]',
    seed INTEGER NOT NULL,
    max_epochs INTEGER NOT NULL,
    patience INTEGER NOT NULL,
    best_epoch INTEGER,
    final_metric REAL,
    setup_time REAL,
    test_metric REAL,
    n_params INTEGER NOT NULL DEFAULT 0,
    checkpoint_digest TEXT,
    worker TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    submit_time REAL,
    start_time REAL,
    end_time REAL,
    error TEXT NOT NULL DEFAULT '',
    UNIQUE (candidate, init)
);
CREATE TABLE IF NOT EXISTS epochs (
    run INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, val_loss REAL, val_metric REAL, epoch_time REAL,
    PRIMARY KEY (run, epoch)
);
"""


@dataclass(frozen=True)
class TopKRecord:
    """One full-training run, as read back from ``topk.sqlite``.

    Attributes
    ----------
    id : int
        The run's id in ``topk.sqlite``.
    candidate : int
        The search candidate it trained (its parent in the lineage).
    init : {"scratch", "checkpoint"}
    status : {"pending", "ok", "failed"}
    search_objective : float
        The candidate's objective in the search.
    source_digest : str or None
        Digest of the search checkpoint the weights came from (``checkpoint`` init only).
    ancestors : tuple of int
        The candidate's ancestry in the search: parent, grandparent, ...
    curves : tuple of (train_loss, val_loss, val_metric, epoch_time)
        One tuple per epoch trained.
    test_metric : float
        The kept weights' metric on the held-out test rows (NaN: none held out, or a run
        recorded before test splits existed).
    """

    id: int
    candidate: int
    init: Init
    status: CandidateStatus
    search_objective: float
    source_digest: str | None
    ancestors: tuple[int, ...]
    seed: int
    max_epochs: int
    patience: int
    best_epoch: int
    final_metric: float
    setup_time: float
    n_params: int
    checkpoint_digest: str | None
    worker: str
    device: str
    submit_time: float
    start_time: float
    end_time: float
    error: str
    curves: tuple[sql.Curve, ...] = ()
    test_metric: float = math.nan


class TopKRegistry(sql.Database):
    """The SQLite record of a search's full-training runs.

    Parameters
    ----------
    run_dir : str, Path or RunDir
        The search's run directory; the database is ``topk.sqlite`` inside it.
    readonly : bool
        Open without creating or changing anything.
    """

    FILE = RunDir.TOPK_DB
    SCHEMA = _SCHEMA
    VERSION = 2
    #: Columns each version added: ``test_metric`` came with the held-out test split.
    MIGRATIONS: ClassVar[dict[int, tuple[tuple[str, str, str], ...]]] = {
        2: (("runs", "test_metric", "REAL"),)
    }
    CURVE_OWNER = "run"
    DESCRIPTION = "full-training record"

    @staticmethod
    def file_in(run: RunDir) -> Path:
        """``topk.sqlite``."""
        return run.topk_db

    # One keyword per column of the row it inserts: grouping them would only rename columns.
    def start(  # noqa: PLR0913
        self,
        candidate: int,
        init: Init,
        *,
        search_objective: float,
        source_digest: str | None,
        ancestors: Sequence[int],
        seed: int,
        max_epochs: int,
        patience: int,
    ) -> int:
        """Record a run about to be submitted and return its id.

        A failed or interrupted (``pending``) run of the same ``(candidate, init)`` is replaced;
        a finished one is not.

        Raises
        ------
        ValueError
            If that candidate already has a finished run with this init.
        """
        existing = self.find(candidate, init)
        if existing is not None and existing.status == CandidateStatus.OK:
            raise ValueError(f"candidate {candidate} already has a finished {init} run")
        values = (
            candidate,
            init,
            CandidateStatus.PENDING,
            sql.to_sql(search_objective),
            source_digest,
            json.dumps(list(ancestors)),
            seed,
            max_epochs,
            patience,
            time.time(),
        )
        with self._transaction():
            if existing is not None:
                self._db.execute("DELETE FROM epochs WHERE run = ?", (existing.id,))
                self._db.execute("DELETE FROM runs WHERE id = ?", (existing.id,))
            cur = self._db.execute(
                "INSERT INTO runs (candidate, init, status, search_objective, source_digest,"
                " ancestors, seed, max_epochs, patience, submit_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish(self, run_id: int, result: FullTrainOutcome) -> None:
        """Record what a full-training run produced, curves included, in one transaction."""
        with self._transaction():
            self._replace_curves(run_id, result)
            self._db.execute(
                "UPDATE runs SET status = ?, best_epoch = ?, final_metric = ?, setup_time = ?, "
                f"test_metric = ?, {sql.RUN_COLUMNS_SQL} WHERE id = ?",
                (
                    result.status,
                    result.best_epoch,
                    sql.to_sql(result.final_metric),
                    sql.to_sql(result.setup_time),
                    sql.to_sql(result.test_metric),
                    *sql.run_columns(result),
                    run_id,
                ),
            )

    def _record(self, row: sqlite3.Row) -> TopKRecord:
        return sql.record_from_row(
            TopKRecord,
            row,
            init=Init(row["init"]),
            status=CandidateStatus(row["status"]),
            ancestors=tuple(json.loads(row["ancestors"])),
            best_epoch=row["best_epoch"] or 0,
            curves=tuple(self._curves(row["id"]).get(row["id"], ())),
            test_metric=sql.from_sql(self.column(row, "test_metric", None)),
        )

    def find(self, candidate: int, init: Init) -> TopKRecord | None:
        """The run of one candidate with one init, or ``None``."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE candidate = ? AND init = ?", (candidate, init)
        ).fetchone()
        return None if row is None else self._record(row)

    def runs(self, status: CandidateStatus | None = None) -> list[TopKRecord]:
        """Every run (or those with one status), in id order."""
        if status is None:
            rows = self._db.execute("SELECT * FROM runs ORDER BY id")
        else:
            rows = self._db.execute("SELECT * FROM runs WHERE status = ? ORDER BY id", (status,))
        return [self._record(r) for r in rows.fetchall()]
