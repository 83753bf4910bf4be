"""The built-in conv1d, conv2d and cell spaces: build, mutate, plan, transfer and train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client

from ckptnas import LineageRegistry, export_model, load_exported, load_model
from ckptnas.config import config_from_dict
from ckptnas.errors import SearchSpaceError
from ckptnas.runtime import Experiment
from ckptnas.search import apply_plan, plan_transfer
from ckptnas.space import ResolvedSpace, make_space
from ckptnas.storage import CheckpointStore

#: One sample's shape for each built-in kind, and options that keep its networks small.
KINDS = {
    "conv1d": ((2, 24), {"filters": [4, 8], "units": [8]}),
    "conv2d": ((1, 8, 8), {"filters": [4, 8], "units": [8]}),
    "cell": ((1, 8, 8), {"channels": 4, "num_cells": 2}),
}


def small_space(kind: str) -> ResolvedSpace:
    shape, options = KINDS[kind]
    return make_space(kind, {"x": shape}, 3, options=options)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_builds_and_mutates_one_node(kind: str) -> None:
    space = small_space(kind)
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    child = space.mutate(arch, rng)
    assert sum(a != b for a, b in zip(arch, child, strict=True)) == 1
    shape, _ = KINDS[kind]
    assert space.build(child)({"x": torch.zeros(5, *shape)}).shape == (5, 3)
    assert len(space.node_names) == len(arch)
    assert space.describe(arch) != space.describe(child)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_plan_copies_a_mutated_childs_shared_layers_bit_identically(kind: str) -> None:
    space = small_space(kind)
    rng = np.random.default_rng(1)
    warm = 0
    for _ in range(10):
        donor_arch = space.sample(rng)
        child_arch = space.mutate(donor_arch, rng, bias=1.0)
        plan = plan_transfer(space, child_arch, donor_arch, donor_id=0)
        donor = space.build(donor_arch)
        child = space.build(child_arch)
        apply_plan(child, donor.state_dict(), plan, freeze=True)
        params, donor_state = dict(child.named_parameters()), donor.state_dict()
        for name, source in plan.mapping.items():
            assert torch.equal(child.state_dict()[name], donor_state[source])
            if name in params:
                assert not params[name].requires_grad
        warm += plan.is_warm
    assert warm >= 5  # a one-node mutation keeps what comes before it


def test_conv_space_refuses_two_inputs_and_the_wrong_rank() -> None:
    with pytest.raises(SearchSpaceError, match="takes one input"):
        make_space("conv2d", {"a": (1, 8, 8), "b": (1, 8, 8)}, 2)
    with pytest.raises(SearchSpaceError, match="needs inputs of 2 or 3 dimensions"):
        make_space("conv2d", {"x": (64,)}, 2)
    with pytest.raises(SearchSpaceError, match="unexpected keyword argument 'widths'"):
        make_space("cell", {"x": (1, 8, 8)}, 2, options={"widths": 3})


def image_file(path: Path, shape: tuple[int, ...], n: int = 120) -> Path:
    """Labelled samples of a shape: the class is which third of the samples' means it is in."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    means = x.reshape(n, -1).mean(1)
    y = np.digitize(means, np.quantile(means, [1 / 3, 2 / 3])).astype(np.int64)
    dims = ("sample", *(f"d{i}" for i in range(len(shape))))
    xr.Dataset({"x": (dims, x), "y": (("sample",), y)}).to_netcdf(path)
    return path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_search_trains_on_workers_and_frozen_transfers_are_exact(
    kind: str, tmp_path: Path, client: Client
) -> None:
    shape, options = KINDS[kind]
    data = image_file(tmp_path / "data.nc", shape)
    config = config_from_dict(
        {
            "experiment": {"seed": 1, "max_candidates": 6, "max_in_flight": 2},
            "data": {"kind": "netcdf", "path": str(data), "inputs": ["x"], "target": "y"},
            "space": {"kind": kind, "options": options},
            "search": {"population_size": 2, "sample_size": 2, "mutation_bias": 2.0},
            "transfer": {"freeze": True},
            "training": {"epochs": 1, "batch_size": 32},
        }
    )
    run = tmp_path / "run"
    ds = Experiment(config, run, progress=False).run(client)
    assert set(ds.status.values) == {"ok"}
    assert (ds.parent >= 0).sum() >= 1
    assert ds.arch_str.values[0] == small_space(kind).describe(tuple(ds.arch.values[0]))
    space = small_space(kind)
    store = CheckpointStore(run)
    with LineageRegistry(run, readonly=True) as registry:
        for record in registry:
            if record.parent is None:
                continue
            parent = registry.get(record.parent)
            plan = plan_transfer(space, record.arch, parent.arch, parent.id)
            assert list(plan.tensors) == list(record.transferred)
            child, donor = store.load(record.id), store.load(parent.id)
            params = dict(space.build(record.arch).named_parameters())
            for name, source in plan.mapping.items():
                if name in params:  # batch norm statistics move on with training
                    assert torch.equal(child[name], donor[source])


def test_a_conv_candidate_exports_and_loads_without_running_code(
    tmp_path: Path, client: Client
) -> None:
    """A built-in space is recorded by name and options: its export needs no trust_code."""
    shape, options = KINDS["conv2d"]
    data = image_file(tmp_path / "data.nc", shape)
    config = config_from_dict(
        {
            "experiment": {"max_candidates": 2},
            "data": {"kind": "netcdf", "path": str(data), "inputs": ["x"], "target": "y"},
            "space": {"kind": "conv2d", "options": options},
            "training": {"epochs": 1},
        }
    )
    run = tmp_path / "run"
    ds = Experiment(config, run, progress=False).run(client)
    best = int(ds.objective.idxmax())
    x = np.random.default_rng(1).normal(size=(4, *shape)).astype(np.float32)
    expected = load_model(run, best)({"x": x})
    exported = export_model(run, best, "safetensors", tmp_path / "export")
    torch.testing.assert_close(load_exported(exported.model_file)({"x": x}), expected)


def test_optuna_samples_a_built_in_space_through_its_nodes() -> None:
    from ckptnas.search import OptunaStrategy

    space = small_space("cell")
    tpe = OptunaStrategy(space, seed=0, sampler_options={"n_startup_trials": 2})
    for i in range(5):
        suggestion = tpe.ask()
        assert space.space.validate(suggestion.arch) == suggestion.arch
        tpe.tell(suggestion, [float(i)])


def test_a_space_without_nodes_is_refused_by_optuna() -> None:
    from ckptnas.search import OptunaStrategy

    class Bare:
        def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
            return (int(rng.integers(2)),)

        def mutate(self, arch: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
            return (1 - arch[0],)

        def build(self, arch: tuple[int, ...]) -> torch.nn.Module:
            return torch.nn.Linear(1, 1)

    with pytest.raises(SearchSpaceError, match="does not list its nodes"):
        OptunaStrategy(ResolvedSpace(Bare()), seed=0)
