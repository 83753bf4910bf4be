"""What the two SQLite records of a run (lineage and top-K) share: opening, transactions, NaN."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def open_database(path: Path, schema: str, readonly: bool = False) -> sqlite3.Connection:
    """Open (or create, with ``schema``) a run's SQLite file, rows addressable by column name.

    Writers use WAL mode: readers in other processes never block the writer and always see the
    last committed state. ``synchronous=NORMAL`` under WAL loses no committed transaction when
    a process dies (only a power cut can drop the last ones) and spares an fsync per commit.

    Raises
    ------
    FileNotFoundError
        If ``readonly`` and the file does not exist.
    """
    if readonly:
        if not path.is_file():
            raise FileNotFoundError(f"no database at {path}")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    db.row_factory = sqlite3.Row
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """All statements inside commit together or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def from_sql(x: Any) -> float:
    """A REAL column as a float, NULL as NaN."""
    return math.nan if x is None else float(x)


def to_sql(x: float | None) -> float | None:
    """A float for a REAL column, NaN and infinities as NULL (SQLite has no NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)
