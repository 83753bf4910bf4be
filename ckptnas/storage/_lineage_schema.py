"""The lineage registry's schema and the columns each of its versions added."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed')),
    parent INTEGER REFERENCES candidates(id),
    transferred TEXT NOT NULL DEFAULT '[]',
    prefix_length INTEGER NOT NULL DEFAULT 0,
    n_params INTEGER NOT NULL DEFAULT 0,
    n_params_transferred INTEGER NOT NULL DEFAULT 0,
    objective REAL,
    checkpoint_digest TEXT,
    donor_usable INTEGER NOT NULL DEFAULT 1,
    worker TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    submit_time REAL,
    start_time REAL,
    end_time REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    hyperparameters TEXT NOT NULL DEFAULT '{}',
    target_epochs INTEGER NOT NULL DEFAULT 0,
    latency REAL,
    stage TEXT NOT NULL DEFAULT '',
    objective_values TEXT NOT NULL DEFAULT '[]',
    parent_run TEXT NOT NULL DEFAULT '',
    checkpoint_deleted TEXT NOT NULL DEFAULT '',
    deleted_time REAL
);
CREATE INDEX IF NOT EXISTS candidates_parent ON candidates(parent);
CREATE INDEX IF NOT EXISTS candidates_best ON candidates(status, objective);
CREATE TABLE IF NOT EXISTS epochs (
    candidate INTEGER NOT NULL REFERENCES candidates(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, val_loss REAL, val_metric REAL, epoch_time REAL,
    PRIMARY KEY (candidate, epoch)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Version 2 adds each candidate's training hyperparameters, the epochs it is to reach and its
#: measured inference latency.
_TO_VERSION_2 = (
    ("candidates", "hyperparameters", "TEXT NOT NULL DEFAULT '{}'"),
    ("candidates", "target_epochs", "INTEGER NOT NULL DEFAULT 0"),
    ("candidates", "latency", "REAL"),
)
#: Version 3 adds the stage of the search that proposed each candidate.
_TO_VERSION_3 = (("candidates", "stage", "TEXT NOT NULL DEFAULT ''"),)
#: Version 4 stores each candidate's objective values, computed once when it is recorded.
_TO_VERSION_4 = (("candidates", "objective_values", "TEXT NOT NULL DEFAULT '[]'"),)
#: Version 5 records the run of a parent from an earlier run (``[transfer] donor_runs``).
_TO_VERSION_5 = (("candidates", "parent_run", "TEXT NOT NULL DEFAULT ''"),)
#: Version 6 records checkpoints deleted by ``[storage]``: why (``useful`` or ``max_bytes``;
#: empty while kept) and when. What the deletions reclaimed is the meta row
#: ``checkpoint_bytes_reclaimed``.
_TO_VERSION_6 = (
    ("candidates", "checkpoint_deleted", "TEXT NOT NULL DEFAULT ''"),
    ("candidates", "deleted_time", "REAL"),
)

#: The columns each version adds, by version.
MIGRATIONS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: _TO_VERSION_2,
    3: _TO_VERSION_3,
    4: _TO_VERSION_4,
    5: _TO_VERSION_5,
    6: _TO_VERSION_6,
}
