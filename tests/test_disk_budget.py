"""[storage]: deleting the checkpoints no candidate can use, a cap on their bytes, and after."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from distributed import Client

from ckptnas import Experiment, LineageRegistry, load_model, load_results
from ckptnas.cli import main
from ckptnas.config import Config, config_from_dict
from ckptnas.errors import CheckpointDeletedError, ConfigError
from ckptnas.runtime._retention import RetentionPolicy
from ckptnas.storage import (
    CandidateRecord,
    CandidateStatus,
    CheckpointStore,
    Deletion,
    checkpoint_bytes,
    checkpoint_usage,
    delete_checkpoints,
)
from ckptnas.storage._blobs import scan_references

# -- the configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"keep": "best"}, r"^\[storage\] keep = 'best' must be all or useful$"),
        ({"max_bytes": -1}, r"^\[storage\] max_bytes = -1 must be >= 0 bytes \(0: no cap\)$"),
        ({"max_bytes": "2GB"}, r"^\[storage\] max_bytes = '2GB' must be an integer$"),
        ({"keep_top": 0}, r"^\[storage\] keep_top = 0 must be > 0$"),
        ({"budget": 1}, r"^\[storage\] unknown key 'budget'"),
    ],
)
def test_a_bad_storage_key_is_one_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"storage": values})


def test_by_default_nothing_is_deleted() -> None:
    storage = Config().storage
    assert (storage.keep, storage.max_bytes, storage.deletes) == ("all", 0, False)
    assert config_from_dict({"storage": {"max_bytes": 10**9}}).storage.deletes


# -- the decisions -------------------------------------------------------------------------


def test_a_candidate_that_leaves_the_pool_and_the_top_goes_once_no_task_reads_it() -> None:
    policy = RetentionPolicy(useful=True, keep_top=1, pool_size=2)
    for cid, objective in ((1, 0.5), (2, 0.9), (3, 0.4)):
        policy.finished(cid, objective, continuable=False, new=True)
    assert policy.top == {2}
    assert list(policy.recent) == [2, 3]
    assert policy.review() == [1]  # out of the pool now: no task is planned from it again
    assert policy.ready(pins={1}) == []  # a child in flight reads it
    assert policy.ready(pins=set()) == [1]
    policy.forget(1)
    policy.finished(4, 0.3, continuable=False, new=True)
    assert policy.review() == []  # 2 left the pool, but it is the best
    policy.finished(5, 0.35, continuable=False, new=True)
    assert policy.review() == [3]
    assert policy.review() == []  # each is named once


def test_the_top_follows_objectives_that_change_when_continued() -> None:
    policy = RetentionPolicy(useful=True, keep_top=2, pool_size=1)
    for cid, objective in ((1, 0.5), (2, 0.6), (3, 0.7)):
        policy.finished(cid, objective, continuable=True, new=True)
    assert policy.top == {2, 3}
    policy.finished(3, 0.1, continuable=False, new=False)  # worse after more epochs
    assert policy.top == {1, 2}
    policy.finished(1, 0.9, continuable=False, new=False)
    assert policy.top == {1, 2}
    assert policy.review() == []  # 3 is the pool of one
    policy.finished(4, 0.05, continuable=False, new=True)
    assert policy.review() == [3]  # done with, out of the top and now out of the pool


def test_ties_rank_the_earlier_candidate_first_as_train_topk_does() -> None:
    policy = RetentionPolicy(useful=True, keep_top=1, pool_size=1)
    for cid in (3, 2, 5):
        policy.finished(cid, 0.5, continuable=False, new=True)
    assert policy.top == {2}


def test_a_continuable_candidate_is_kept_until_the_scheduler_is_done_with_it() -> None:
    policy = RetentionPolicy(useful=True, keep_top=1, pool_size=1)
    policy.finished(1, 0.1, continuable=True, new=True)
    policy.finished(2, 0.9, continuable=False, new=True)
    assert policy.review() == []
    assert policy.victim(pins=set()) is None  # 1 may be continued, 2 is the best
    policy.finished(1, 0.2, continuable=False, new=False)  # trained to the top rung
    assert policy.review() == [1]


def test_max_bytes_evicts_the_worst_that_nothing_pins() -> None:
    policy = RetentionPolicy(useful=False, keep_top=1, pool_size=10)
    for cid, objective in ((1, 0.3), (2, math.nan), (3, 0.1), (4, 0.8), (5, 0.2)):
        policy.finished(cid, objective, continuable=False, new=True)
    assert policy.review() == []  # keep = "all": only the cap deletes
    evicted = []
    while (victim := policy.victim(pins={3})) is not None:
        evicted.append(victim)
        policy.forget(victim)
    assert evicted == [2, 5, 1]  # NaN first; 3 is pinned, 4 is the best


# -- deleting files ------------------------------------------------------------------------


def tensors(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"layer{i}.weight": torch.randn(32, 32, generator=g) for i in range(3)}


def frozen_child(donor: dict[str, torch.Tensor], seed: int, kept: int) -> dict[str, torch.Tensor]:
    fresh = tensors(seed)
    return {n: donor[n] if int(n[5]) < kept else fresh[n] for n in donor}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_blob_goes_with_the_last_checkpoint_that_refers_to_it(tmp_path: Path) -> None:
    """A lineage 1 <- 2 <- 3 of frozen children, deleted from the root down."""
    store = CheckpointStore(tmp_path)
    first = tensors(1)
    d1 = store.save(1, first)
    second = frozen_child(first, 2, kept=1)
    d2 = store.save(2, second, share_from=[(1, d1)])
    d3 = store.save(3, frozen_child(second, 3, kept=2), share_from=[(2, d2)])
    written = checkpoint_usage(tmp_path).bytes_on_disk
    assert delete_checkpoints(store, 1, []) == 0  # its file lives on as the blob 2 and 3 use
    assert store.verify(2, d2) and store.verify(3, d3)
    freed = delete_checkpoints(store, 2, [])
    assert store.verify(3, d3)
    assert freed < store.path(3).stat().st_size + 2 * 32 * 32 * 4  # 3 refers to most of it
    freed += delete_checkpoints(store, 3, [])
    assert freed == written
    assert files_under(store.root) == []


def test_deleting_a_child_keeps_its_donor_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = tensors(1)
    d1 = store.save(1, first)
    store.save(2, frozen_child(first, 2, kept=2), share_from=[(1, d1)])
    donor_file, child_file = store.path(1).stat().st_size, store.path(2).stat().st_size
    assert delete_checkpoints(store, 2, []) == child_file
    # The donor's blob is its own file under a second name: kept, for its next child.
    assert store.verify(1, d1) and store.blobs.path(d1).is_file()
    assert scan_references(store.root) == {}
    assert delete_checkpoints(store, 1, []) == donor_file
    assert files_under(store.root) == []


def test_every_version_and_training_state_of_a_continued_candidate_goes(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    first = tensors(1)
    digest = store.save(7, first)
    store.save_state(7, digest, {"moment": torch.zeros(8)}, {"step": 1})
    longer = frozen_child(first, 2, kept=2)
    digest = store.save(7, longer, epochs=3, share_from=[(7, digest)])
    store.save_state(7, digest, {"moment": torch.ones(8)}, {"step": 3})
    written = checkpoint_usage(tmp_path).bytes_on_disk
    assert delete_checkpoints(store, 7, [3, 9]) == written  # a version never made is skipped
    assert files_under(store.root) == []


# -- searches ------------------------------------------------------------------------------


def tiny_frozen(**storage: object) -> Config:
    """The tiny search, frozen, with a small donor pool and top."""
    from conftest import TINY

    return config_from_dict(
        {
            **TINY,
            "experiment": {**TINY["experiment"], "max_candidates": 24},
            "transfer": {"freeze": True},
            "storage": {"keep_top": 2, **storage},
        }
    )


@pytest.fixture(scope="module")
def useful_run(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    run = tmp_path_factory.mktemp("useful") / "run"
    Experiment(tiny_frozen(keep="useful"), run, progress=False).run(client)
    return run


def records(run: Path) -> dict[int, CandidateRecord]:
    with LineageRegistry(run, readonly=True) as registry:
        return {r.id: r for r in registry.candidates()}


def assert_no_donor_went_while_read(run: Path, first_epochs: int = 0) -> None:
    """Each deleted donor went after its last child of this run had finished, none rejected.

    With a scheduler that continues candidates (``first_epochs`` trained first), a continued
    child's recorded end is its continuation's, which reads only its own checkpoint.
    """
    found = records(run)
    with LineageRegistry(run, readonly=True) as registry:
        curves = registry.curves()
    for child in found.values():
        assert child.status == CandidateStatus.OK, (child.id, child.error)
        assert "rejected" not in child.note, (child.id, child.note)
        parent = found.get(child.parent) if child.parent is not None else None
        continued = first_epochs and len(curves[child.id]) > first_epochs
        if parent is not None and parent.checkpoint_deleted and not continued:
            assert parent.deleted_time >= child.end_time, (parent.id, child.id)


def deleted_before(found: dict[int, CandidateRecord]) -> set[int]:
    return {cid for cid, r in found.items() if r.checkpoint_deleted}


def assert_kept_checkpoints_verify(run: Path) -> None:
    """Every kept checkpoint reads back whole (its blobs are there), and only those are left."""
    store = CheckpointStore(run)
    for record in records(run).values():
        if record.checkpoint_deleted:
            assert not store.exists(record.id), record.id
        else:
            assert store.verify(record.id, record.checkpoint_digest), record.id


def test_keep_useful_deletes_and_records_what_it_deleted(useful_run: Path) -> None:
    found = records(useful_run)
    deleted = {cid for cid, r in found.items() if r.checkpoint_deleted}
    assert 10 <= len(deleted) <= 24 - 4  # the pool of 4 stays, at least
    assert {found[cid].checkpoint_deleted for cid in deleted} == {Deletion.USEFUL}
    assert all(not found[cid].donor_usable for cid in deleted)
    ds = load_results(useful_run)
    assert {int(c) for c in ds.candidate[ds.checkpoint_deleted == 1]} == deleted
    assert_kept_checkpoints_verify(useful_run)
    assert_no_donor_went_while_read(useful_run)


def test_the_best_are_never_deleted(useful_run: Path) -> None:
    found = records(useful_run)
    best = sorted(found.values(), key=lambda r: (-r.objective, r.id))[:2]
    assert all(not r.checkpoint_deleted for r in best)
    model = load_model(useful_run, best[0].id)
    assert model.input_names == ["cell", "drug1", "drug2"]


def test_a_deleted_checkpoint_is_one_line_everywhere(
    useful_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = min(cid for cid, r in records(useful_run).items() if r.checkpoint_deleted)
    said = f"candidate {cid}'s checkpoint was deleted by [storage] keep = 'useful'"
    with pytest.raises(CheckpointDeletedError, match=rf"^{re.escape(said)}"):
        load_model(useful_run, cid)
    run, c = str(useful_run), str(cid)
    commands = [
        ["export", run, "--candidate", c, "--out", str(tmp_path / "export")],
        ["predict", run, str(tmp_path / "data.nc"), "--candidate", c],
        ["evaluate", run, "--candidate", c, "--split", "val"],
        ["train-topk", run, "-k", "24", "--init", "checkpoint", "--local", "--no-progress"],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        # train-topk names the best of the candidates it would train whose checkpoint went.
        expected = said if argv[0] != "train-topk" else said.split("'s ", 1)[1]
        assert len(err) == 1 and expected in err[0], (argv, err)
    assert not (tmp_path / "export").exists()


def test_summary_reports_what_was_kept_and_reclaimed(
    useful_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(useful_run)]) == 0
    n = sum(bool(r.checkpoint_deleted) for r in records(useful_run).values())
    line = next(x for x in capsys.readouterr().out.splitlines() if "reclaimed" in x)
    assert line.startswith("checkpoints: ") and " kept, " in line
    assert line.endswith(f"reclaimed ({n} deleted by [storage] keep)")
    with LineageRegistry(useful_run, readonly=True) as registry:
        assert int(registry.get_meta("checkpoint_bytes_reclaimed") or 0) > 0


def test_a_resumed_run_finishes_deletions_and_never_plans_from_them(
    tmp_path: Path, client: Client
) -> None:
    run = tmp_path / "run"
    config = tiny_frozen(keep="useful").replace("experiment", max_candidates=12)
    Experiment(config, run, progress=False).run(client)
    found = records(run)
    # A client killed between recording a deletion and deleting the files leaves them.
    kept = [r for r in found.values() if not r.checkpoint_deleted]
    worst = min(kept, key=lambda r: (r.objective, r.id))
    with LineageRegistry(run) as registry:
        registry.mark_deleted([worst.id], Deletion.USEFUL)
    assert CheckpointStore(run).exists(worst.id)
    longer = config.replace("experiment", max_candidates=30)
    Experiment(longer, run, progress=False, resume=True).run(client)
    after = records(run)
    assert len(after) == 30
    assert sum(bool(r.checkpoint_deleted) for r in after.values()) > len(deleted_before(found))
    assert not CheckpointStore(run).exists(worst.id)
    gone = deleted_before(found) | {worst.id}
    for record in after.values():
        if record.id > 12:  # planned by the resumed client
            assert record.parent not in gone, record.id
    assert_kept_checkpoints_verify(run)
    assert_no_donor_went_while_read(run)


def test_under_asha_only_candidates_it_cannot_continue_go(tmp_path: Path, client: Client) -> None:
    run = tmp_path / "run"
    config = (
        tiny_frozen(keep="useful", keep_top=1)
        .replace("experiment", max_candidates=16)
        .replace("search", population_size=2, sample_size=1)
        .replace("search", scheduler="asha", min_epochs=1, max_epochs=2, reduction_factor=2)
    )
    Experiment(config, run, progress=False).run(client)
    with LineageRegistry(run, readonly=True) as registry:
        curves = registry.curves()
    found = records(run)
    deleted = [r for r in found.values() if r.checkpoint_deleted]
    assert deleted  # some reached the top rung and left the pool
    assert all(len(curves[r.id]) == 2 for r in deleted)  # none the scheduler could promote
    assert not any("not continued" in r.note for r in found.values())
    assert_kept_checkpoints_verify(run)  # and no version of a deleted one is left
    assert_no_donor_went_while_read(run, first_epochs=1)


# -- the acceptance test: a frozen search under a tenth of its disk -----------------------

#: The smallest search that trains: sklearn's diabetes, one epoch, one batch per epoch.
DIABETES = {
    "experiment": {"name": "budget", "seed": 1, "allow_duplicates": True, "flush_interval": 5.0},
    "data": {"kind": "sklearn", "name": "diabetes"},
    "space": {"num_nodes": 3, "input_nodes": 0, "units": [8, 16, 32], "shared_inputs": []},
    "search": {"population_size": 20, "sample_size": 5},
    "training": {"epochs": 1, "batch_size": 512},
    "transfer": {"freeze": True},
}
#: Candidates of the acceptance test: about 40 s on two cores (the whole search, 2 workers).
N = 2000
#: What the same search writes without a cap (checkpoint_usage at its end, measured).
UNCAPPED = 5_410_368


@contextlib.contextmanager
def peak_bytes(run: Path, every: float = 0.02) -> Iterator[list[int]]:
    """Sample the run's checkpoint bytes every ``every`` seconds while open; ``[peak]``."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            peak[0] = max(peak[0], checkpoint_bytes(run))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def test_a_frozen_search_under_a_tenth_of_its_disk(tmp_path: Path, client: Client) -> None:
    """Disk use sampled every 20 ms stays under the cap; every transfer still verifies."""
    cap = UNCAPPED // 10
    config = config_from_dict(
        {
            **DIABETES,
            "experiment": {**DIABETES["experiment"], "max_candidates": N},
            "storage": {"max_bytes": cap},
        }
    )
    run = tmp_path / "run"
    tic = time.perf_counter()
    with peak_bytes(run) as peak:
        Experiment(config, run, progress=False).run(client)
    seconds = time.perf_counter() - tic
    found = records(run)
    kept = checkpoint_usage(run).bytes_on_disk
    with LineageRegistry(run, readonly=True) as registry:
        reclaimed = int(registry.get_meta("checkpoint_bytes_reclaimed") or 0)
        deletions = registry.deletions()
    print(f"{N} candidates, cap {cap}: peak {peak[0]} bytes, kept {kept}, {seconds:.1f} s")
    assert len(found) == N
    assert peak[0] <= cap
    assert kept + reclaimed > 5 * cap  # it wrote far more than the cap allows at once
    assert deletions == {"max_bytes": sum(bool(r.checkpoint_deleted) for r in found.values())}
    assert sum(r.parent is not None for r in found.values()) > N // 2
    assert_no_donor_went_while_read(run)  # every transfer verified: none failed or rejected
    assert_kept_checkpoints_verify(run)
    best = sorted(found.values(), key=lambda r: (-r.objective, r.id))[:5]
    for record in best:
        assert load_model(run, record.id).predict({"x": torch.zeros(3, 10)}).shape == (3,)
