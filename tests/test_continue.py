"""Continuing a candidate from its checkpoint gives the curve and weights of training straight."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ckptnas.config import Config
from ckptnas.data import load_data
from ckptnas.runtime import CandidateSpec, TrainingSettings, data_key, train_candidate
from ckptnas.search import plan_transfer
from ckptnas.space import SearchSpace
from ckptnas.storage import CandidateStatus, CheckpointStore
from ckptnas.storage._header import read_header


@pytest.fixture
def deterministic() -> Iterator[None]:
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def _spec(config: Config, run_dir: Path, epochs: int, freeze: bool) -> CandidateSpec:
    data = load_data(config.data, seed=config.experiment.seed)
    space = SearchSpace.from_config(config.space, data.input_sizes, data.output_size)
    arch = tuple(1 if node.role == "op" else 0 for node in space.nodes)
    settings = TrainingSettings(
        epochs=epochs,
        batch_size=32,
        learning_rate=1e-2,
        freeze=freeze,
        device="cpu",
        weight_decay=1e-4,
        dropout=0.2,
    )
    return CandidateSpec(
        candidate_id=1,
        arch=arch,
        space=space.to_dict(),
        run_dir=str(run_dir),
        data_key=data_key(config.data, config.experiment.seed),
        seed=11,
        settings=settings,
        keep_state=True,
    )


def _warm(spec: CandidateSpec) -> CandidateSpec:
    """Candidate 2 of the same architecture, warm-started from candidate 1 (trained first)."""
    space = SearchSpace.from_dict(spec.space)
    donor = train_candidate(replace(spec, settings=replace(spec.settings, epochs=1)))
    plan = plan_transfer(space, (*spec.arch[:-1], 0), spec.arch, 1)
    assert plan.is_warm
    return replace(
        spec,
        candidate_id=2,
        arch=(*spec.arch[:-1], 0),
        plan=plan,
        donor_digest=donor.checkpoint_digest,
    )


@pytest.mark.parametrize("freeze", [False, True])
def test_two_epochs_then_two_more_equal_four_straight(
    tiny_config: Config, tmp_path: Path, freeze: bool, deterministic: None
) -> None:
    straight_spec = _warm(_spec(tiny_config, tmp_path / "straight", 4, freeze))
    straight = train_candidate(straight_spec)
    first = train_candidate(_warm(_spec(tiny_config, tmp_path / "stopped", 2, freeze)))
    assert first.status == CandidateStatus.OK
    rest = train_candidate(
        replace(
            _warm(_spec(tiny_config, tmp_path / "stopped", 4, freeze)),
            start_epoch=2,
            own_digest=first.checkpoint_digest,
        )
    )
    assert rest.status == CandidateStatus.OK, rest.error
    for name in ("train_loss", "val_loss", "val_metric"):
        continued = getattr(first, name) + getattr(rest, name)
        assert continued == getattr(straight, name), name
    assert rest.checkpoint_digest == straight.checkpoint_digest
    stopped = CheckpointStore(tmp_path / "stopped")
    a = stopped.load(2, digest=rest.checkpoint_digest)
    b = CheckpointStore(tmp_path / "straight").load(2)
    assert all(torch.equal(a[k], b[k]) for k in b)
    # The two-epoch version stays, for donors planned from it.
    assert stopped.load(2, digest=first.checkpoint_digest).keys() == a.keys()
    assert len(stopped.versions(2)) == 2
    # Frozen, the continued version refers to what it inherited where the first one does.
    shared = read_header(stopped.path(2, 4)).shared
    assert shared == read_header(stopped.path(2)).shared
    assert bool(shared) == freeze


def test_continuing_from_a_missing_state_fails_the_task(
    tiny_config: Config, tmp_path: Path
) -> None:
    spec = _spec(tiny_config, tmp_path, 1, False)
    first = train_candidate(replace(spec, keep_state=False))
    assert first.checkpoint_digest is not None
    rest = train_candidate(
        replace(
            spec,
            settings=replace(spec.settings, epochs=2),
            start_epoch=1,
            own_digest=first.checkpoint_digest,
        )
    )
    assert rest.status == CandidateStatus.FAILED
    assert "training state of candidate 1 is missing" in rest.error
