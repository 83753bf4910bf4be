from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ckptnas.errors import SearchSpaceError
from ckptnas.space import SearchSpace


def inputs(batch: int = 5) -> dict[str, torch.Tensor]:
    return {
        "cell": torch.randn(batch, 48),
        "drug1": torch.randn(batch, 32),
        "drug2": torch.randn(batch, 32),
    }


def test_sample_is_valid_and_seeded(combo_space: SearchSpace) -> None:
    a = [combo_space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert combo_space.validate(a[0]) == a[0]


def test_node_order_branches_then_trunk_op_skip(combo_space: SearchSpace) -> None:
    names = [n.name for n in combo_space.nodes]
    assert names[:4] == [
        "branches.cell.0",
        "branches.cell.1",
        "branches.drug1_drug2.0",
        "branches.drug1_drug2.1",
    ]
    assert names[4:8] == ["trunk.0", "trunk.0.skip", "trunk.1", "trunk.1.skip"]


def test_mutate_changes_exactly_one_node(
    combo_space: SearchSpace, rng: np.random.Generator
) -> None:
    for _ in range(200):
        arch = combo_space.sample(rng)
        child = combo_space.mutate(arch, rng, bias=2.0)
        assert sum(a != b for a, b in zip(arch, child, strict=True)) == 1
        combo_space.validate(child)


def test_mutation_bias_favours_later_nodes(
    combo_space: SearchSpace, rng: np.random.Generator
) -> None:
    def mean_position(bias: float) -> float:
        positions = []
        for _ in range(400):
            arch = combo_space.sample(rng)
            child = combo_space.mutate(arch, rng, bias=bias)
            positions.append(
                next(i for i, (a, b) in enumerate(zip(arch, child, strict=True)) if a != b)
            )
        return float(np.mean(positions))

    assert mean_position(3.0) > mean_position(0.0) + 1.0


def test_validate_rejects_out_of_range(combo_space: SearchSpace) -> None:
    arch = [0] * len(combo_space.nodes)
    arch[0] = len(combo_space.ops)
    with pytest.raises(SearchSpaceError, match=r"branches\.cell\.0"):
        combo_space.validate(arch)
    with pytest.raises(SearchSpaceError, match="choices"):
        combo_space.validate([0])


def test_build_names_match_layers(combo_space: SearchSpace, rng: np.random.Generator) -> None:
    for _ in range(20):
        arch = combo_space.sample(rng)
        model = combo_space.build(arch)
        expected = {
            name: shape
            for layer in combo_space.layers(arch)
            for name, shape in layer.tensors.items()
        }
        got = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        assert got == expected
        assert model(inputs()).shape == (5, 1)
        assert combo_space.n_params(arch) == sum(p.numel() for p in model.parameters())


def test_shared_inputs_share_one_branch(combo_space: SearchSpace) -> None:
    arch = [1] * len(combo_space.nodes)  # every op a dense layer
    unshared = SearchSpace.from_dict({**combo_space.to_dict(), "shared_inputs": ()})
    unshared_arch = [1] * len(unshared.nodes)
    shared_model, unshared_model = combo_space.build(arch), unshared.build(unshared_arch)
    assert list(shared_model.branches) == ["cell", "drug1_drug2"]
    assert list(unshared_model.branches) == ["cell", "drug1", "drug2"]
    branch = sum(p.numel() for p in unshared_model.branches["drug2"].parameters())
    assert combo_space.n_params(arch) == unshared.n_params(unshared_arch) - branch
    # One module serves both drugs: the same input in either slot gives the same embedding.
    x = torch.randn(3, 32)
    module = shared_model.branches["drug1_drug2"]
    assert torch.equal(module(x), module(x.clone()))


def test_shared_inputs_of_different_widths_rejected() -> None:
    with pytest.raises(SearchSpaceError, match="different widths"):
        SearchSpace((("a", 3), ("b", 4)), 1, shared_inputs=(("a", "b"),))


def test_identity_of_a_layer_ignores_later_choices(
    combo_space: SearchSpace, rng: np.random.Generator
) -> None:
    arch = list(combo_space.sample(rng))
    arch[4] = 1  # trunk.0 is dense
    before = combo_space.identities(arch)["trunk.0"]
    later = list(arch)
    later[-2] = (later[-2] + 1) % combo_space.nodes[-2].n_choices  # last trunk op
    assert combo_space.identities(later)["trunk.0"] == before
    earlier = list(arch)
    earlier[0] = (earlier[0] + 1) % len(combo_space.ops)  # first cell-branch op
    assert combo_space.identities(earlier)["trunk.0"] != before


def test_skip_connection_changes_identity_downstream(combo_space: SearchSpace) -> None:
    arch = [1] * len(combo_space.nodes)
    skip = [n.name for n in combo_space.nodes].index("trunk.0.skip")
    arch[skip] = 0
    other = list(arch)
    other[skip] = 1
    a, b = combo_space.identities(arch), combo_space.identities(other)
    assert a["trunk.0"] == b["trunk.0"]  # the skip follows trunk.0: same layer, same input
    assert a["trunk.1"] != b["trunk.1"]  # trunk.1 is fed differently
    assert (
        combo_space.build(other).trunk[1].in_features > combo_space.build(arch).trunk[1].in_features
    )


@given(st.data())
@settings(max_examples=30, deadline=None)
def test_round_trip_through_dict(data: st.DataObject) -> None:
    space = SearchSpace(
        (("x", data.draw(st.integers(1, 20))),),
        output_size=data.draw(st.integers(1, 5)),
        num_nodes=data.draw(st.integers(1, 5)),
        input_nodes=data.draw(st.integers(0, 2)),
        skip_connections=data.draw(st.booleans()),
    )
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert again.nodes == space.nodes
