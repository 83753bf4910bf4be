from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ckptnas.config import Config
from ckptnas.runtime import (
    CandidateSpec,
    TrainingSettings,
    data_key,
    donor_cache,
    get_data,
    train_candidate,
)
from ckptnas.search import plan_transfer
from ckptnas.space import SearchSpace
from ckptnas.storage import CheckpointStore
from ckptnas.storage._header import read_header


@pytest.fixture
def setting(tiny_config: Config, tmp_path: Path) -> tuple[SearchSpace, CandidateSpec]:
    key = data_key(tiny_config.data, 0)
    data = get_data(key)
    space = SearchSpace.from_config(tiny_config.space, data.input_sizes, data.output_size)
    parent_arch = tuple([1] * len(space.nodes))
    spec = CandidateSpec(
        candidate_id=1,
        arch=parent_arch,
        space=space.to_dict(),
        run_dir=str(tmp_path),
        data_key=key,
        settings=TrainingSettings(epochs=2, batch_size=64, learning_rate=1e-3, freeze=True),
        seed=11,
    )
    return space, spec


def warm_child(space: SearchSpace, parent: CandidateSpec, digest: str | None) -> CandidateSpec:
    child_arch = space.mutate(parent.arch, np.random.default_rng(0), bias=50.0)
    plan = plan_transfer(space, child_arch, parent.arch, parent.candidate_id)
    assert plan.is_warm
    return replace(parent, candidate_id=2, arch=child_arch, plan=plan, donor_digest=digest)


def test_scratch_candidate_trains_and_saves(setting: tuple[SearchSpace, CandidateSpec]) -> None:
    _, spec = setting
    result = train_candidate(spec)
    assert result.status == "ok", result.error
    assert len(result.val_metric) == 2 and result.objective == result.val_metric[-1]
    assert result.train_loss[1] < result.train_loss[0]
    saved = CheckpointStore(spec.run_dir).load(1, digest=result.checkpoint_digest)
    assert sum(t.numel() for t in saved.values()) == result.n_params


def test_frozen_tensors_are_bit_identical_to_the_donor(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    space, parent = setting
    parent_result = train_candidate(parent)
    child = warm_child(space, parent, parent_result.checkpoint_digest)
    result = train_candidate(child)
    assert result.status == "ok" and result.plan == child.plan
    store = CheckpointStore(parent.run_dir)
    donor, trained = store.load(1), store.load(2)
    for name in child.plan.tensors:
        assert torch.equal(trained[name], donor[name]), name
    untouched = [n for n in trained if n not in child.plan.tensors]
    assert untouched  # the mutated part was trained...
    fresh = space.build(child.arch).state_dict()
    assert not all(torch.equal(trained[n], fresh[n]) for n in untouched)


def test_unfrozen_transfer_keeps_training(setting: tuple[SearchSpace, CandidateSpec]) -> None:
    space, parent = setting
    parent_result = train_candidate(parent)
    child = warm_child(space, parent, parent_result.checkpoint_digest)
    child = replace(child, settings=replace(child.settings, freeze=False))
    train_candidate(child)
    store = CheckpointStore(parent.run_dir)
    donor, trained = store.load(1), store.load(2)
    assert any(not torch.equal(trained[n], donor[n]) for n in child.plan.tensors)


def test_warm_and_scratch_children_differ_in_first_epoch(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    space, parent = setting
    parent_result = train_candidate(parent)
    warm = warm_child(space, parent, parent_result.checkpoint_digest)
    scratch = replace(warm, candidate_id=3, plan=replace(warm.plan, donor=None, tensors=()))
    warm_result, scratch_result = train_candidate(warm), train_candidate(scratch)
    assert scratch_result.plan.is_warm is False
    assert warm_result.val_loss[0] != scratch_result.val_loss[0]


def test_broken_donor_is_reported_not_used(setting: tuple[SearchSpace, CandidateSpec]) -> None:
    space, parent = setting
    digest = train_candidate(parent).checkpoint_digest
    path = CheckpointStore(parent.run_dir).path(1)
    path.write_bytes(path.read_bytes()[:-8])
    # Read as another process would: this one kept what it wrote (see TensorCache.put).
    donor_cache().discard(CheckpointStore(parent.run_dir), 1)
    result = train_candidate(warm_child(space, parent, digest))
    assert result.status == "donor_failed"
    assert "candidate 1" in result.error
    assert not CheckpointStore(parent.run_dir).exists(2)


def test_diverging_candidate_fails_with_partial_curve(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    _, spec = setting
    spec = replace(spec, settings=replace(spec.settings, learning_rate=1e12, epochs=3))
    result = train_candidate(spec)
    assert result.status == "failed" and "not finite" in result.error
    assert 1 <= len(result.val_loss) <= 3
    assert result.checkpoint_digest is None
    assert not CheckpointStore(spec.run_dir).exists(spec.candidate_id)


def frozen_names(space: SearchSpace, spec: CandidateSpec) -> set[str]:
    """The parameters a frozen warm start copies whole and never trains."""
    params = dict(space.build(spec.arch).named_parameters())
    return {n for n in spec.plan.tensors if n in params and n not in spec.plan.partial}


def test_a_frozen_child_refers_to_its_donors_tensors(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    space, parent = setting
    child = warm_child(space, parent, train_candidate(parent).checkpoint_digest)
    result = train_candidate(child)
    store = CheckpointStore(parent.run_dir)
    assert set(read_header(store.path(2)).shared) == frozen_names(space, child) != set()
    assert store.verify(2, result.checkpoint_digest)
    unshared = replace(child, candidate_id=3, settings=replace(child.settings, dedup=False))
    assert train_candidate(unshared).checkpoint_digest == result.checkpoint_digest
    assert read_header(store.path(3)).shared == {}


def test_a_donor_whose_shared_tensors_are_damaged_is_reported_not_used(
    setting: tuple[SearchSpace, CandidateSpec],
) -> None:
    space, parent = setting
    digest = train_candidate(parent).checkpoint_digest
    child = warm_child(space, parent, digest)
    child_digest = train_candidate(child).checkpoint_digest
    store = CheckpointStore(parent.run_dir)
    blob = store.blobs.path(digest)
    blob.write_bytes(blob.read_bytes()[:-8])  # the parent's file, hence the blob, cut short
    for written in (1, 2):  # read as another process would: this one kept what it wrote
        donor_cache().discard(store, written)
    grandchild = replace(warm_child(space, child, child_digest), candidate_id=3)
    assert set(grandchild.plan.tensors) & frozen_names(space, child)
    result = train_candidate(grandchild)
    assert result.status == "donor_failed"
    assert "candidate 2" in result.error
    assert not store.exists(3)
