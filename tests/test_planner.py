"""Transfer policies: none, lcp, aligned and widen pick donors and plans as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from distributed import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptnas.config import Config
from ckptnas.runtime import Experiment
from ckptnas.search import SCRATCH, IdentityIndex, Planner, apply_plan, plan_transfer
from ckptnas.space import Layer, ResolvedSpace, SearchSpace, make_space


@pytest.fixture(scope="module")
def cell_space() -> ResolvedSpace:
    return make_space("cell", {"x": (1, 8, 8)}, 3, options={"channels": 2, "num_cells": 2})


def trained(space: ResolvedSpace | SearchSpace, seed: int, n: int) -> list[tuple[int, ...]]:
    """Architectures of a short lineage: samples and their mutants."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng)]
    while len(archs) < n:
        parent = archs[int(rng.integers(len(archs)))]
        archs.append(space.mutate(parent, rng, 1.0) if rng.random() < 0.7 else space.sample(rng))
    return archs


@pytest.mark.parametrize("kind", ["dense", "cell"])
@given(seed=st.integers(0, 2**32 - 1))
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_aligned_copies_the_most_any_donor_gives_and_never_less_than_lcp(
    kind: str, seed: int, combo_space: SearchSpace, cell_space: ResolvedSpace
) -> None:
    space: ResolvedSpace | SearchSpace = combo_space if kind == "dense" else cell_space
    archs = trained(space, seed, 12)
    donors, recipient = list(dict.fromkeys(archs[:-1])), archs[-1]
    planners = {policy: Planner(policy, space) for policy in ("lcp", "aligned")}
    for i, arch in enumerate(donors):
        for planner in planners.values():
            planner.add(i, arch, objective=float(i % 3))
    lcp, aligned = (planners[p].plan(recipient) for p in ("lcp", "aligned"))
    best = max(plan_transfer(space, recipient, d, i).n_params for i, d in enumerate(donors))
    assert aligned.n_params == best
    assert aligned.n_params >= lcp.n_params
    if aligned.is_warm:
        assert aligned == plan_transfer(
            space, recipient, donors[aligned.donor or 0], aligned.donor or 0
        )


def test_none_never_transfers(combo_space: SearchSpace) -> None:
    planner = Planner("none", combo_space)
    arch = combo_space.sample(np.random.default_rng(0))
    planner.add(0, arch, 1.0)
    assert planner.plan(arch) == SCRATCH


def test_discarded_and_failed_donors_are_never_chosen(combo_space: SearchSpace) -> None:
    arch = combo_space.sample(np.random.default_rng(0))
    for policy in ("lcp", "aligned"):
        planner = Planner(policy, combo_space)
        planner.add(0, arch, float("nan"))
        assert planner.plan(arch) == SCRATCH
        planner.add(1, arch, 0.5)
        assert planner.plan(arch).donor == 1
        planner.discard(1)
        assert planner.plan(arch) == SCRATCH


def test_identity_index_ties_go_to_the_better_then_the_earlier_candidate() -> None:
    index = IdentityIndex()
    layer = Layer("a", "id-a", ("a.weight",), 4)
    for candidate, objective in ((3, 0.5), (1, 0.9), (2, 0.9)):
        index.add(candidate, [layer], objective)
    assert index.best_donor([layer]) == (1, 4)
    index.discard(1)
    assert index.best_donor([layer]) == (2, 4)
    assert index.best_donor([Layer("b", "id-b", (), 1)]) is None


def test_widen_copies_the_overlap_of_a_layer_that_only_changed_width() -> None:
    space = SearchSpace(
        (("x", 6),), output_size=2, num_nodes=3, input_nodes=0, units=(4, 8), skip_connections=False
    )
    donor_arch = (1, 3, 1)  # dense(4, relu), dense(8, relu), dense(4, relu)
    child_arch = (1, 1, 1)  # the middle layer 4 wide instead of 8
    planner = Planner("widen", space)
    planner.add(0, donor_arch, 1.0)
    plan = planner.plan(child_arch)
    exact = plan_transfer(space, child_arch, donor_arch, 0)
    assert set(exact.tensors) == {"trunk.0.weight", "trunk.0.bias"}
    assert set(plan.tensors) - set(exact.tensors) == {
        f"{layer}.{t}" for layer in ("trunk.1", "trunk.2", "head") for t in ("weight", "bias")
    }
    assert set(plan.partial) == set(plan.tensors) - set(exact.tensors)
    donor, child = space.build(donor_arch), space.build(child_arch)
    apply_plan(child, donor.state_dict(), plan, freeze=True)
    torch.testing.assert_close(child.trunk[1].weight, donor.trunk[1].weight[:4])
    torch.testing.assert_close(child.trunk[2].weight, donor.trunk[2].weight[:, :4])
    assert child.trunk[2].weight.requires_grad and not child.trunk[0].weight.requires_grad
    # trunk.1: 4 x 4 weights + 4 biases, trunk.2: 4 x 4 + 4, the head 2 x 4 + 2
    assert plan.n_params == exact.n_params + 20 + 20 + 10


def test_widen_on_a_conv_space_matches_filters_not_kernels() -> None:
    space = make_space(
        "conv2d", {"x": (1, 8, 8)}, 3, options={"filters": [4, 8], "kernels": [3, 5]}
    )
    convs = space.space.convs  # (filters, kernel, activation) of choice i + 1
    choice = {c: i + 1 for i, c in enumerate(convs)}
    donor_arch = (choice[4, 3, "relu"], 0, choice[8, 3, "relu"], 0, 0, 0, 0, 0)
    wider = (choice[8, 3, "relu"], 0, choice[8, 3, "relu"], 0, 0, 0, 0, 0)
    other_kernel = (choice[4, 5, "relu"], 0, choice[8, 3, "relu"], 0, 0, 0, 0, 0)
    planner = Planner("widen", space)
    planner.add(0, donor_arch, 1.0)
    assert "features.0.0.weight" in planner.plan(wider).partial
    assert "features.0.0.weight" not in planner.plan(other_kernel).tensors


@pytest.mark.parametrize("policy", ["aligned", "widen"])
def test_searches_with_the_other_policies_warm_start(
    policy: str, tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = tiny_config.replace("transfer", policy=policy)
    ds = Experiment(config, tmp_path, progress=False).run(client)
    assert set(ds.status.values) == {"ok"}
    warm = ds.parent >= 0
    assert warm.any()
    assert (ds.frac_params_transferred.where(warm, drop=True) > 0).all()
    assert ds.attrs["policy"] == policy
