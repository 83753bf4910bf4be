"""Layer identities derived by tracing a built network with torch.fx."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from ckptnas.errors import SearchSpaceError
from ckptnas.search import plan_transfer
from ckptnas.search._plan import plan_from_layers
from ckptnas.space import SearchSpace, traced_layers


def dense_spaces() -> st.SearchStrategy[SearchSpace]:
    """Dense spaces with one to three inputs, optional shared branches, skips and branch nodes."""
    return st.builds(
        lambda shared, input_nodes, num_nodes, skips, max_skip: SearchSpace(
            (("cell", 6), ("drug1", 4), ("drug2", 4)),
            output_size=2,
            num_nodes=num_nodes,
            input_nodes=input_nodes,
            units=(3, 5),
            activations=("relu", "tanh"),
            skip_connections=skips,
            max_skip=max_skip,
            shared_inputs=(("drug1", "drug2"),) if shared else (),
        ),
        st.booleans(),
        st.integers(0, 2),
        st.integers(1, 4),
        st.booleans(),
        st.integers(1, 3),
    )


@given(space=dense_spaces(), seed=st.integers(0, 2**32 - 1), mutations=st.integers(0, 4))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_derived_identities_plan_as_the_hand_written_ones(
    space: SearchSpace, seed: int, mutations: int
) -> None:
    rng = np.random.default_rng(seed)
    donor = space.sample(rng)
    recipient = donor
    for _ in range(mutations):
        recipient = space.mutate(recipient, rng, 1.0)
    by_hand = plan_transfer(space, recipient, donor, donor_id=7)
    derived = plan_from_layers(
        traced_layers(space.build(recipient)),
        traced_layers(space.build(donor)),
        7,
        by_hand.prefix_length,
    )
    assert sorted(derived.mapping.items()) == sorted(by_hand.mapping.items())
    assert derived.n_params == by_hand.n_params
    assert derived.donor == by_hand.donor


def test_derived_layers_cover_every_parameter(combo_space: SearchSpace) -> None:
    arch = combo_space.sample(np.random.default_rng(3))
    model = combo_space.build(arch)
    layers = traced_layers(model)
    names = [t for layer in layers for t in layer.tensors]
    assert sorted(names) == sorted(name for name, _ in model.named_parameters())
    assert sum(layer.n_params for layer in layers) == combo_space.n_params(arch)


class Renamed(nn.Module):
    """The same two layers under other names, optionally behind an extra first layer."""

    def __init__(self, first: str, second: str, extra: bool = False) -> None:
        super().__init__()
        self.extra = nn.Linear(4, 4) if extra else None
        self.add_module(first, nn.Linear(4, 8))
        self.add_module(second, nn.Linear(8, 2))
        self.order = (first, second)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs["x"] if self.extra is None else self.extra(inputs["x"])
        for name in self.order:
            x = getattr(self, name)(x)
        return x


def test_a_renamed_layer_maps_to_its_donor_name() -> None:
    plan = plan_from_layers(
        traced_layers(Renamed("a", "b")), traced_layers(Renamed("first", "second")), 1, 0
    )
    assert plan.mapping == {
        "a.weight": "first.weight",
        "a.bias": "first.bias",
        "b.weight": "second.weight",
        "b.bias": "second.bias",
    }


class Cell(nn.Module):
    """Two identical convolutions on one input, their sum, a shared head applied twice."""

    def __init__(self, swap: bool = False) -> None:
        super().__init__()
        self.left = nn.Conv2d(1, 2, 3, padding=1)
        self.right = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Linear(2, 2)
        self.swap = swap

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs["x"]
        a, b = self.left(x), self.right(x)
        if self.swap:
            a, b = b, a
        h = torch.relu(a) + b
        return self.head(self.head(h.mean((2, 3))))


def test_twin_layers_are_told_apart_by_trace_order_and_shared_modules_are_one_layer() -> None:
    layers = traced_layers(Cell())
    assert [layer.name for layer in layers] == ["left", "right", "head"]
    assert len({layer.identity for layer in layers}) == 3
    # The head is called twice; one layer, and the sum feeding it depends on which twin is
    # behind the relu, so it differs when the twins swap roles.
    swapped = {layer.name: layer.identity for layer in traced_layers(Cell(swap=True))}
    same = {layer.name: layer.identity for layer in layers}
    assert swapped["left"] == same["left"]
    assert swapped["head"] != same["head"]


def test_an_upstream_change_changes_every_identity_downstream() -> None:
    plain = {layer.name: layer.identity for layer in traced_layers(Renamed("a", "b"))}
    extra = {layer.name: layer.identity for layer in traced_layers(Renamed("a", "b", extra=True))}
    assert list(extra) == ["extra", "a", "b"]
    assert not set(plain.values()) & set(extra.values())


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.a(inputs["x"])
        return x if x.sum() > 0 else -x


def test_untraceable_forward_names_the_identities_hook() -> None:
    with pytest.raises(SearchSpaceError, match=r"cannot trace.*identities\(arch\)"):
        traced_layers(DataDependent())


def test_forward_that_iterates_over_its_inputs_traces_given_their_names() -> None:
    class Each(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 1)

        def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            return sum(self.a(v) for v in inputs.values())  # type: ignore[return-value]

    assert [layer.name for layer in traced_layers(Each(), ["u", "v"])] == ["a"]


def test_batch_norm_buffers_are_part_of_the_layer() -> None:
    class Normed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.BatchNorm1d(3)

        def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.norm(inputs["x"])  # type: ignore[no-any-return]

    (layer,) = traced_layers(Normed())
    assert layer.tensors[:2] == ("norm.weight", "norm.bias")
    assert "norm.running_mean" in layer.tensors
    assert layer.n_params == 6
