"""The run directory and the registries' shared base: what a folder holds, schema versions."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import one_epoch_result

from ckptnas.cli import main
from ckptnas.errors import RunDirectoryError
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.storage import (
    Deletion,
    LineageRegistry,
    RunDir,
    RunKind,
    TopKRegistry,
    build_dataset,
)


def test_kind_of_each_state(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.kind() == RunKind.ABSENT
    run.root.mkdir()
    assert run.kind() == RunKind.EMPTY
    run.config.write_text("")  # somebody's own config.toml: not a run
    assert run.kind() == RunKind.FOREIGN
    run.config.unlink()
    run.create()
    assert run.kind() == RunKind.STARTED
    run.results.write_text("")
    assert run.kind() == RunKind.INCOMPLETE  # results without their registry
    LineageRegistry(run.root).close()
    assert run.kind() == RunKind.SEARCH
    (tmp_path / "file").write_text("x")
    assert RunDir(tmp_path / "file").kind() == RunKind.NOT_A_DIRECTORY


def test_every_file_lives_in_the_run_directory(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    files = [run.config, run.lineage, run.results, run.checkpoints, run.topk_db]
    files += [run.topk_results, run.figures, run.topk_dir("scratch")]
    assert all(f.is_relative_to(tmp_path) for f in files)
    assert len(set(files)) == len(files)


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with run.lock(), pytest.raises(RunDirectoryError, match="in use by another"), run.lock():
        pass


@pytest.mark.parametrize("registry", [LineageRegistry, TopKRegistry])
def test_new_database_records_its_schema_version(
    tmp_path: Path, registry: type[LineageRegistry | TopKRegistry]
) -> None:
    registry(tmp_path).close()
    with sqlite3.connect(tmp_path / registry.FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == registry.VERSION >= 1


@pytest.mark.parametrize("readonly", [False, True])
def test_database_of_a_newer_version_is_refused(tmp_path: Path, readonly: bool) -> None:
    LineageRegistry(tmp_path).close()
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        db.execute(f"PRAGMA user_version = {LineageRegistry.VERSION + 1}")
    newer = LineageRegistry.VERSION + 1
    with pytest.raises(RunDirectoryError, match=rf"schema version {newer}.*newer ckptnas.*upgrade"):
        LineageRegistry(tmp_path, readonly=readonly)


def test_cli_names_the_file_of_a_newer_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    LineageRegistry(tmp_path).close()
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    assert main(["lineage", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lineage.sqlite" in err[0] and "99" in err[0]


def test_database_without_a_version_is_read_and_stamped(tmp_path: Path) -> None:
    """Runs written before schema versions existed (version 0, the same tables) still open."""
    LineageRegistry(tmp_path).close()
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        db.execute("PRAGMA user_version = 0")
        db.execute("INSERT INTO candidates (arch, status) VALUES ('[1, 2]', 'pending')")
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert reg.get(1).arch == (1, 2)
    LineageRegistry(tmp_path).close()
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LineageRegistry.VERSION


@contextlib.contextmanager
def registry_of_version(run_dir: Path, version: int) -> Iterator[sqlite3.Connection]:
    """A lineage registry as ``version`` wrote it, open to add rows the way that version did.

    The columns each later version added are dropped, read off the registry's own migrations,
    so a file of any version is what that version wrote, whatever versions came after.
    """
    LineageRegistry(run_dir).close()
    with sqlite3.connect(run_dir / "lineage.sqlite") as db:
        for step in range(version + 1, LineageRegistry.VERSION + 1):
            for table, column, _ in LineageRegistry.MIGRATIONS[step]:
                db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute(f"PRAGMA user_version = {version}")
        yield db


def _version_1_registry(run_dir: Path) -> None:
    """A lineage registry as version 1 wrote it: no hyperparameters, no target epochs."""
    with registry_of_version(run_dir, 1) as db:
        db.execute("INSERT INTO candidates (arch, status, objective) VALUES ('[1, 2]', 'ok', 0.5)")


def test_version_1_registry_is_read_as_it_is_and_migrated_when_written(tmp_path: Path) -> None:
    _version_1_registry(tmp_path)
    with LineageRegistry(tmp_path, readonly=True) as reg:
        (old,) = reg.candidates()
        assert (old.arch, old.objective, old.hyperparameters, old.target_epochs) == (
            (1, 2),
            0.5,
            {},
            0,
        )
        assert math.isnan(old.latency)
        assert old.stage == ""
        assert old.parent_run == ""
        assert old.checkpoint_deleted == ""
        assert reg.deletions() == {}
    with LineageRegistry(tmp_path) as reg:
        assert reg.get(1) == old
        new = reg.add_candidate(
            (3, 4), SCRATCH, 10, hyperparameters={"dropout": 0.25}, target_epochs=3, stage="random"
        )
        assert reg.get(new).hyperparameters == {"dropout": 0.25}
        assert reg.get(new).target_epochs == 3
        assert reg.get(new).stage == "random"
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6


def test_version_2_registry_gains_the_stage_column_when_written(tmp_path: Path) -> None:
    with registry_of_version(tmp_path, 2) as db:
        db.execute("INSERT INTO candidates (arch, status) VALUES ('[1, 2]', 'ok')")
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert reg.get(1).stage == ""
    with LineageRegistry(tmp_path) as reg:
        assert reg.get(reg.add_candidate((3, 4), SCRATCH, 10, stage="mutation")).stage == (
            "mutation"
        )
        assert reg.get(1).stage == ""


def test_version_4_registry_gains_the_parent_run_column_when_written(tmp_path: Path) -> None:
    with registry_of_version(tmp_path, 4) as db:
        db.execute("INSERT INTO candidates (arch, status, parent) VALUES ('[1, 2]', 'ok', NULL)")
        db.execute("INSERT INTO candidates (arch, status, parent) VALUES ('[1, 3]', 'ok', 1)")
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert reg.get(2).parent_run == ""
        assert reg.parent(2) == 1
        assert reg.children(1) == [2]
    plan = TransferPlan(7, ("trunk.0.weight",), 1, 10, run=str(tmp_path / "last-week"))
    with LineageRegistry(tmp_path) as reg:
        foreign = reg.add_candidate((1, 4), plan, 10)
        record = reg.get(foreign)
        assert (record.parent, record.parent_run) == (7, str(tmp_path / "last-week"))
        assert record.parent_label == "last-week:7"
        assert reg.parent(foreign) is None
        assert reg.forest()[None] == [1, foreign]


def test_version_5_registry_gains_the_deletion_columns_when_written(tmp_path: Path) -> None:
    with registry_of_version(tmp_path, 5) as db:
        for arch in ("[1, 2]", "[1, 3]"):
            db.execute(f"INSERT INTO candidates (arch, status) VALUES ('{arch}', 'ok')")
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert (reg.get(1).checkpoint_deleted, reg.deletions()) == ("", {})
        assert math.isnan(reg.get(1).deleted_time)
    with LineageRegistry(tmp_path) as reg:
        reg.mark_deleted([2], Deletion.MAX_BYTES)
        kept, deleted = reg.get(1), reg.get(2)
        assert (kept.checkpoint_deleted, kept.donor_usable) == ("", True)
        assert (deleted.checkpoint_deleted, deleted.donor_usable) == ("max_bytes", False)
        assert deleted.deleted_time > 0
        assert reg.deletions() == {"max_bytes": 1}
    with sqlite3.connect(tmp_path / "lineage.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6


def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lineage.sqlite").write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(RunDirectoryError, match=r"lineage\.sqlite is not a readable database"):
        LineageRegistry(tmp_path)


def test_results_flush_leaves_the_registry_file_complete(tmp_path: Path) -> None:
    """After each results.nc, lineage.sqlite alone (without its -wal) holds every candidate."""
    from ckptnas.search import SCRATCH
    from ckptnas.storage import ResultsWriter

    run, copy = tmp_path / "run", tmp_path / "copy"
    copy.mkdir()
    with LineageRegistry(run) as registry:
        for arch in ((0,), (1,), (2,)):
            cid = registry.add_candidate(arch, SCRATCH, 4)
            registry.record(one_epoch_result(cid))
        ResultsWriter(run, registry, 1).flush()
        (copy / "lineage.sqlite").write_bytes((run / "lineage.sqlite").read_bytes())
    with LineageRegistry(copy, readonly=True) as copied:
        assert [r.status for r in copied] == ["ok", "ok", "ok"]


def test_stage_is_recorded_and_written_to_results(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as registry:
        for stage in ("initial population", "mutation"):
            registry.record(
                one_epoch_result(registry.add_candidate((0, 1), SCRATCH, 10, stage=stage))
            )
        ds = build_dataset(registry)
    assert list(ds.stage.values) == ["initial population", "mutation"]
    assert ds.stage.attrs["long_name"].startswith("stage of the search")
