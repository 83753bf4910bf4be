from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from ckptnas.runtime import CandidateResult
from ckptnas.search import SCRATCH, DonorIndex, PrefixTree, TransferPlan, common_prefix_length
from ckptnas.storage import LineageRegistry


def donors(reg: LineageRegistry) -> DonorIndex:
    """The donor index a run builds from its registry when it starts or resumes."""
    return DonorIndex.from_records(reg.candidates("ok"))


def finish(reg: LineageRegistry, cid: int, objective: float, plan: TransferPlan = SCRATCH) -> None:
    status = "ok" if math.isfinite(objective) else "failed"
    reg.record(
        CandidateResult(
            candidate_id=cid,
            status=status,
            val_metric=(objective / 2, objective),
            val_loss=(1.0, 0.5),
            train_loss=(1.1, 0.6),
            epoch_time=(0.1, 0.1),
            n_params=10,
            plan=plan,
        )
    )


def test_parent_ancestors_children(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        a = reg.add_candidate((0, 0), SCRATCH, 10)
        finish(reg, a, 0.1)
        plan_b = TransferPlan(donor=a, tensors=("x.weight", "x.bias"), prefix_length=1, n_params=4)
        b = reg.add_candidate((0, 1), plan_b, 10)
        finish(reg, b, 0.2, plan_b)
        plan_c = TransferPlan(donor=b, tensors=("x.weight",), prefix_length=1, n_params=3)
        c = reg.add_candidate((0, 2), plan_c, 10)
        finish(reg, c, 0.3, plan_c)
        assert reg.parent(a) is None and reg.parent(c) == b
        assert reg.ancestors(c) == [b, a]
        assert reg.children(a) == [b]
        assert reg.get(b).frac_params_transferred == pytest.approx(0.4)
        assert reg.get(b).transferred == ("x.weight", "x.bias")
    # reopened read-only, nothing was lost
    with LineageRegistry(tmp_path, readonly=True) as reg:
        assert [r.id for r in reg] == [a, b, c]
        assert reg.curves()[c][1][2] == pytest.approx(0.3)


def test_best_donor_is_longest_prefix_then_best_objective(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        ids = {}
        for arch, score in [
            ((1, 2, 3), 0.5),
            ((1, 2, 4), 0.9),
            ((1, 5, 5), 0.99),
            ((2, 2, 2), 0.1),
        ]:
            ids[arch] = reg.add_candidate(arch, SCRATCH, 1)
            finish(reg, ids[arch], score)
        assert donors(reg).best_donor((1, 2, 9))[0] == ids[(1, 2, 4)]  # prefix 2, better of two
        assert donors(reg).best_donor((1, 2, 3))[:3:2] == (ids[(1, 2, 3)], 3)  # identical wins
        assert donors(reg).best_donor((7, 7, 7))[0] == ids[(1, 5, 5)]  # nothing shared: the best
        assert donors(reg).best_donor((2, 9, 9))[0] == ids[(2, 2, 2)]


def test_failed_and_pending_candidates_are_never_donors(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        good = reg.add_candidate((0, 0, 0), SCRATCH, 1)
        finish(reg, good, 0.1)
        bad = reg.add_candidate((1, 1, 1), SCRATCH, 1)
        finish(reg, bad, math.nan)
        reg.add_candidate((1, 1, 2), SCRATCH, 1)  # pending
        assert donors(reg).best_donor((1, 1, 1))[0] == good
        assert reg.get(bad).status == "failed"


def test_unusable_donor_is_skipped_and_stays_skipped(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        near = reg.add_candidate((1, 1, 1), SCRATCH, 1)
        finish(reg, near, 0.5)
        far = reg.add_candidate((1, 2, 2), SCRATCH, 1)
        finish(reg, far, 0.1)
        reg.mark_unusable(near, "checkpoint truncated")
        assert donors(reg).best_donor((1, 1, 1))[0] == far
        assert "truncated" in reg.get(near).note
    with LineageRegistry(tmp_path) as reg:
        assert donors(reg).best_donor((1, 1, 1))[0] == far


def test_prefix_tree_matches_brute_force() -> None:
    rng = random.Random(5)
    tree, items = PrefixTree(), {}
    for cid in range(2000):
        arch = tuple(rng.randrange(3) for _ in range(7))
        objective = rng.choice([0.1, 0.2, 0.3, rng.random()])  # plenty of ties
        items[cid] = (arch, objective)
        tree.insert(arch, cid, objective)
    for cid in range(0, 2000, 4):
        tree.remove(cid)
        del items[cid]
    for _ in range(300):
        query = tuple(rng.randrange(3) for _ in range(7))
        best = max(items, key=lambda c: (common_prefix_length(query, items[c][0]), items[c][1], -c))
        assert tree.best_match(query) == (best, common_prefix_length(query, items[best][0]))
    assert len(tree) == 1500


def test_empty_registry_has_no_donor(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        assert donors(reg).best_donor((0, 1)) is None


def test_readonly_open_of_missing_registry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LineageRegistry(tmp_path / "nothing", readonly=True)


def test_a_batch_of_changes_is_kept_whole_or_not_at_all(tmp_path: Path) -> None:
    with LineageRegistry(tmp_path) as reg:
        with reg.batch():
            first = reg.add_candidate([1, 2], SCRATCH, 10)
            reg.add_candidate([1, 3], SCRATCH, 10)
        assert len(reg) == 2
        with pytest.raises(RuntimeError), reg.batch():
            reg.add_candidate([2, 2], SCRATCH, 10)
            reg.add_note(first, "changed")
            raise RuntimeError("the client stopped")
        assert len(reg) == 2
        assert reg.get(first).note == ""
    with LineageRegistry(tmp_path, readonly=True) as reg:  # what another process sees
        assert len(reg) == 2
