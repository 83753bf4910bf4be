"""What the run's SQLite files (lineage and top-K) share: opening, versions, transactions, curves.

:class:`Database` is the base of both registries. A subclass names its file, its schema and the
schema's version; the base opens the file (WAL, one writer), checks the version stored in
``PRAGMA user_version`` against the one this code reads, and writes and reads the per-epoch
curves that both keep in an ``epochs`` table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import re
import sqlite3
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar
from urllib.parse import quote

from ckptnas.errors import RunDirectoryError
from ckptnas.storage._rundir import RunDir

logger = logging.getLogger(__name__)

#: The four per-epoch measurements, in the column order of every ``epochs`` table.
CURVE_NAMES = ("train_loss", "val_loss", "val_metric", "epoch_time")

Curve = tuple[float, float, float, float]

R = TypeVar("R")


class HasCurves(Protocol):
    """A result carrying one value per epoch for each of :data:`CURVE_NAMES`."""

    @property
    def train_loss(self) -> tuple[float, ...]: ...
    @property
    def val_loss(self) -> tuple[float, ...]: ...
    @property
    def val_metric(self) -> tuple[float, ...]: ...
    @property
    def epoch_time(self) -> tuple[float, ...]: ...


class HasRunColumns(Protocol):
    """A finished task's result: how big, which checkpoint, where and when it ran, what failed."""

    @property
    def n_params(self) -> int: ...
    @property
    def checkpoint_digest(self) -> str | None: ...
    @property
    def worker(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def start_time(self) -> float: ...
    @property
    def end_time(self) -> float: ...
    @property
    def error(self) -> str: ...


#: The ``UPDATE`` assignments of the columns both registries keep of a finished task, in the
#: order :func:`run_columns` gives their values.
RUN_COLUMNS_SQL = (
    "n_params = ?, checkpoint_digest = ?, worker = ?, device = ?, start_time = ?, end_time = ?,"
    " error = ?"
)


def run_columns(result: HasRunColumns) -> tuple[Any, ...]:
    """The values of :data:`RUN_COLUMNS_SQL` for one result."""
    return (
        result.n_params,
        result.checkpoint_digest,
        result.worker,
        result.device,
        to_sql(result.start_time),
        to_sql(result.end_time),
        result.error,
    )


def from_sql(x: Any) -> float:
    """A REAL column as a float, NULL as NaN."""
    return math.nan if x is None else float(x)


def to_sql(x: float | None) -> float | None:
    """A float for a REAL column, NaN and infinities as NULL (SQLite has no NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)


@functools.cache
def _typed_fields(cls: type[Any], kind: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(f.name for f in dataclasses.fields(cls) if hints[f.name] is kind)


def record_from_row(cls: type[R], row: sqlite3.Row, **values: Any) -> R:
    """A frozen record from a row: fields by column name, float columns' NULL as NaN.

    ``values`` give the fields that need decoding (JSON text, enums) or are not columns. Float
    and int columns are converted, so that a value of the wrong type (a file edited or
    damaged by hand) raises ``ValueError`` or ``TypeError`` here, where the row is known.
    """
    floats = _typed_fields(cls, float)  # type: ignore[arg-type]  # a class is hashable
    ints = _typed_fields(cls, int)  # type: ignore[arg-type]

    def field(name: str) -> Any:
        value = row[name]
        if name in floats:
            return from_sql(value)
        return int(value) if name in ints else value

    kwargs = {
        f.name: field(f.name)
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in values
    }
    return cls(**kwargs, **values)


class Database(ABC):
    """Base class of a run's SQLite records.

    Parameters
    ----------
    run_dir : str, Path or RunDir
        The run directory; the database is the file :meth:`file_in` names in it.
    readonly : bool
        Open without creating or changing anything.
    untouched : bool
        With ``readonly``: create no file beside it either, not even SQLite's ``-shm`` index,
        even where the folder could be written (an earlier run read as a donor run). Only a
        finished file, its ``-wal`` empty or gone, is opened so.

    Raises
    ------
    FileNotFoundError
        If ``readonly`` and the file does not exist.
    RunDirectoryError
        If the file is not an SQLite database, or was written by an incompatible version; with
        ``untouched``, if a client still has it open (its ``-wal`` holds changes).

    Notes
    -----
    Writers use WAL mode: readers in other processes never block the writer and always see the
    last committed state. ``synchronous=NORMAL`` under WAL loses no committed transaction when
    a process dies (only a power cut can drop the last ones) and spares an fsync per commit.
    """

    #: The file's name inside the run directory (as :class:`RunDir` names it).
    FILE: ClassVar[str]
    #: The ``CREATE TABLE`` statements of a new file.
    SCHEMA: ClassVar[str]
    #: The schema version this code writes and reads (``PRAGMA user_version``).
    VERSION: ClassVar[int]
    #: Version to the ``(table, column, definition)`` it adds to the version before.
    MIGRATIONS: ClassVar[dict[int, tuple[tuple[str, str, str], ...]]] = {}
    #: The column of the ``epochs`` table naming whose curve a row belongs to.
    CURVE_OWNER: ClassVar[str]
    #: What the file is, in messages.
    DESCRIPTION: ClassVar[str]

    def __init__(
        self, run_dir: str | Path | RunDir, readonly: bool = False, *, untouched: bool = False
    ) -> None:
        self.run_dir = RunDir(run_dir)
        self.path = self.file_in(self.run_dir)
        self._untouched = readonly and untouched
        if readonly and not self.path.is_file():
            raise FileNotFoundError(f"no {self.DESCRIPTION} at {self.path}")
        try:
            self._db = self._connect(readonly)
        except sqlite3.OperationalError as exc:  # the file system refused, not the content
            raise RunDirectoryError(f"cannot open {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise RunDirectoryError(f"{self.path} is not a readable database: {exc}") from None

    @staticmethod
    @abstractmethod
    def file_in(run: RunDir) -> Path:
        """The database's file in a run directory."""

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if readonly:
            db = sqlite3.connect(self._readonly_uri(), uri=True, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            version = self._checked_version(db)
            if not readonly:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                if version < self.VERSION:
                    self._upgrade(db, version)
            self._check_tables(db)
        except BaseException:
            db.close()
            raise
        return db

    def _readonly_uri(self) -> str:
        """The URI that opens the file for reading only, wherever it lies.

        The path is percent-encoded: ``?``, ``#`` and ``%`` are URI syntax, and unquoted they
        made SQLite open (and create) another file. A WAL-mode file opened with ``mode=ro``
        still creates its ``-shm`` index beside it, which a folder the reader cannot write
        refuses (another user's run, a read-only archive); a finished run has no ``-wal``
        left, so its file alone holds everything and is opened ``immutable``, without one.
        """
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        wal = self.path.with_name(self.path.name + "-wal")
        finished = not wal.exists() or wal.stat().st_size == 0
        if self._untouched and not finished:
            raise RunDirectoryError(f"{self.path} is still open: its -wal file holds changes")
        if finished and (self._untouched or not os.access(self.path.parent, os.W_OK)):
            uri += "&immutable=1"
        return uri

    def _checked_version(self, db: sqlite3.Connection) -> int:
        """The file's schema version, refusing one this code cannot read.

        Files written before schema versions were recorded (ckptnas 0.1) have version 0 and
        the same tables as version 1; they are read as version 1 and stamped on first write.
        """
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > self.VERSION:
            raise RunDirectoryError(
                f"{self.path} has schema version {version}, written by a newer ckptnas; this "
                f"version reads up to {self.VERSION}: upgrade ckptnas to open this run"
            )
        return version

    def _check_tables(self, db: sqlite3.Connection) -> None:
        """Refuse a file that lacks a table of the schema (dropped, or not a run's file).

        Checked once here, so that a damaged file is told in one line naming it, instead of
        as "no such table" from whichever read comes first.
        """
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        have = {str(r[0]) for r in rows}
        missing = [
            t for t in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", self.SCHEMA) if t not in have
        ]
        if missing:
            raise RunDirectoryError(
                f"{self.path} is corrupt: it has no {' or '.join(missing)} table"
                f"{'s' if len(missing) > 1 else ''} of a {self.DESCRIPTION}"
            )

    def _upgrade(self, db: sqlite3.Connection, version: int) -> None:
        """Bring a file of an older version (or a new, empty one) to :attr:`VERSION`, at once.

        Each later version's columns are added where a table lacks them (version 0 reads as
        1); a new file gets the current schema.
        """
        adds = []
        for step in range(max(version, 1) + 1, self.VERSION + 1):
            for table, column, definition in self.MIGRATIONS[step]:
                have = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                if have and column not in have:
                    adds.append(f"ALTER TABLE {table} ADD COLUMN {column} {definition};\n")
        db.executescript(
            f"BEGIN IMMEDIATE;\n{''.join(adds)}{self.SCHEMA}"
            f"PRAGMA user_version = {int(self.VERSION)};\nCOMMIT;"
        )

    @staticmethod
    def column(row: sqlite3.Row, name: str, default: Any) -> Any:
        """A row's column, or ``default`` where a file of an older version lacks it.

        Files are migrated when opened for writing; read-only, they are read as they are.
        """
        return row[name] if name in row.keys() else default  # noqa: SIM118  # a Row has no __contains__ of names

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make every change inside one transaction: it commits once, at the end.

        A search client records many candidates in a burst (everything that finished while
        it was busy); one commit for all of them instead of one each halved the registry's
        share of the client's time. Changes made inside are all kept or, if the block
        raises, none is. Once committed, the batch is copied into the database file itself
        (see :meth:`checkpoint`): a run whose ``-wal`` is lost after its client was killed
        still holds every batch it recorded. Measured on this kind of machine: a batch of 8
        candidates commits in 0.06 ms, and the checkpoint after it (two fsyncs) adds 6 ms.
        """
        outermost = not self._db.in_transaction
        with self._transaction():
            yield
        if outermost:
            self.checkpoint()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all.

        Every change to the file goes through here, so a failed write (a read-only or full
        file system, a locked file) is reported once, naming the file. Inside another
        transaction (see :meth:`batch`) it joins that one.
        """
        if self._db.in_transaction:
            yield
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise RunDirectoryError(f"cannot write {self.path}: {exc}") from None

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file, so the file alone holds the run.

        Between checkpoints the newest changes live in ``<file>-wal``; a copy or a deletion
        of the database file alone would lose them.
        """
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError as exc:
            raise RunDirectoryError(f"cannot write {self.path}: {exc}") from None

    # -- per-epoch curves ------------------------------------------------------------------
    def _replace_curves(self, owner: int, result: HasCurves) -> None:
        """Store a result's curves as the owner's (inside the caller's transaction)."""
        rows = zip(*(getattr(result, name) for name in CURVE_NAMES), strict=True)
        self._db.execute(f"DELETE FROM epochs WHERE {self.CURVE_OWNER} = ?", (owner,))
        self._db.executemany(
            "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
            [(owner, e + 1, *map(to_sql, r)) for e, r in enumerate(rows)],
        )

    def _curve_row(self, row: sqlite3.Row) -> Curve:
        """One row of the ``epochs`` table as a :data:`Curve` entry."""
        try:
            return (
                from_sql(row["train_loss"]),
                from_sql(row["val_loss"]),
                from_sql(row["val_metric"]),
                from_sql(row["epoch_time"]),
            )
        except (TypeError, ValueError) as exc:
            raise RunDirectoryError(
                f"{self.path} is corrupt: epoch {row['epoch']} of {self.CURVE_OWNER} "
                f"{row[self.CURVE_OWNER]} cannot be read ({exc})"
            ) from None

    def _curves(self, owner: int | None = None) -> dict[int, list[Curve]]:
        """Owner id to its per-epoch :data:`CURVE_NAMES`, for one owner or all of them."""
        where, args = (f"WHERE {self.CURVE_OWNER} = ?", (owner,)) if owner is not None else ("", ())
        out: dict[int, list[Curve]] = {}
        rows = self._db.execute(
            f"SELECT * FROM epochs {where} ORDER BY {self.CURVE_OWNER}, epoch", args
        )
        for row in rows:
            out.setdefault(row[self.CURVE_OWNER], []).append(self._curve_row(row))
        return out
