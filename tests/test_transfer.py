from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import shared_layers_by_hand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptnas.search import SCRATCH, apply_plan, common_prefix_length, plan_transfer
from ckptnas.space import SearchSpace


@given(seed=st.integers(0, 2**32 - 1), mutations=st.integers(0, 4), bias=st.floats(0, 3))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_plan_copies_exactly_the_shared_layers(
    combo_space: SearchSpace, seed: int, mutations: int, bias: float
) -> None:
    rng = np.random.default_rng(seed)
    donor = combo_space.sample(rng)
    recipient = donor
    for _ in range(mutations):
        recipient = combo_space.mutate(recipient, rng, bias)
    plan = plan_transfer(combo_space, recipient, donor, donor_id=3)
    expected = shared_layers_by_hand(combo_space, recipient, donor)
    assert len(plan.tensors) == 2 * len(expected)
    assert sorted({t.rsplit(".", 1)[0] for t in plan.tensors}) == sorted(expected)
    if expected:
        assert plan.prefix_length == common_prefix_length(recipient, donor)
        assert plan.donor == 3
        layers = {layer.name: layer for layer in combo_space.layers(recipient)}
        assert plan.n_params == sum(layers[n].n_params for n in expected)
    else:
        assert plan == SCRATCH


def test_identical_architectures_share_everything(
    combo_space: SearchSpace, rng: np.random.Generator
) -> None:
    arch = combo_space.sample(rng)
    plan = plan_transfer(combo_space, arch, arch, 0)
    assert set(plan.tensors) == set(combo_space.build(arch).state_dict())
    assert plan.n_params == combo_space.n_params(arch)


def test_apply_copies_and_freezes(combo_space: SearchSpace, rng: np.random.Generator) -> None:
    donor_arch = tuple([1] * len(combo_space.nodes))
    child_arch = combo_space.mutate(donor_arch, rng, bias=50.0)  # mutate a late node
    donor = combo_space.build(donor_arch)
    child = combo_space.build(child_arch)
    plan = plan_transfer(combo_space, child_arch, donor_arch, 0)
    assert plan.is_warm
    apply_plan(child, donor.state_dict(), plan, freeze=True)
    params = dict(child.named_parameters())
    for name in plan.tensors:
        assert torch.equal(params[name], donor.state_dict()[name])
        assert not params[name].requires_grad
    others = [n for n in params if n not in plan.tensors]
    assert others and all(params[n].requires_grad for n in others)


def test_apply_without_freeze_leaves_tensors_trainable(combo_space: SearchSpace) -> None:
    arch = tuple([1] * len(combo_space.nodes))
    donor, child = combo_space.build(arch), combo_space.build(arch)
    apply_plan(child, donor.state_dict(), plan_transfer(combo_space, arch, arch, 0), freeze=False)
    assert all(p.requires_grad for p in child.parameters())


def test_apply_rejects_wrong_shapes(combo_space: SearchSpace) -> None:
    arch = tuple([1] * len(combo_space.nodes))
    child = combo_space.build(arch)
    plan = plan_transfer(combo_space, arch, arch, 0)
    bad = {name: torch.zeros(2, 2) for name in plan.tensors}
    with pytest.raises(ValueError, match="shape"):
        apply_plan(child, bad, plan, freeze=False)
