"""Shared fixtures: a tiny configuration and one real LocalCluster for the session."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from distributed import Client, LocalCluster

from ckptnas.config import Config, config_from_dict
from ckptnas.space import SearchSpace

TINY = {
    "experiment": {"name": "tiny", "seed": 3, "max_candidates": 8, "flush_interval": 0.5},
    "data": {"kind": "synthetic_combo", "n_samples": 400},
    "space": {
        "num_nodes": 3,
        "units": [8, 16],
        "activations": ["relu", "tanh"],
        "shared_inputs": [["drug1", "drug2"]],
    },
    "search": {"population_size": 4, "sample_size": 2, "mutation_bias": 1.0},
    "training": {"epochs": 2, "batch_size": 64},
    "cluster": {"n_workers": 2},
}


@pytest.fixture
def tiny_config() -> Config:
    """A configuration that trains a candidate in well under a second."""
    return config_from_dict(TINY)


@pytest.fixture
def combo_space() -> SearchSpace:
    """A Combo-like space: a cell input and two drugs sharing a branch."""
    return SearchSpace(
        (("cell", 48), ("drug1", 32), ("drug2", 32)),
        output_size=1,
        num_nodes=4,
        input_nodes=2,
        units=(8, 16),
        activations=("relu", "tanh"),
        shared_inputs=(("drug1", "drug2"),),
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def client() -> Iterator[Client]:
    """A real two-worker LocalCluster on localhost, shared by the tests that need one."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
