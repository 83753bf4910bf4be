"""Transfer policies: none, lcp and aligned pick donors and plans as documented."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptnas.search import SCRATCH, IdentityIndex, Planner, plan_transfer
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
