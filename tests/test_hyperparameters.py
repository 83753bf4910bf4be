"""Training hyperparameters searched per candidate: configuration, sampling, dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ckptnas.config import config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.search import HyperparameterSpace, RegularizedEvolution
from ckptnas.space import SearchSpace, set_dropout

TABLE = {
    "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
    "weight_decay": {"low": 0.0, "high": 1e-3},
    "dropout": {"low": 0.0, "high": 0.5},
    "batch_size": [32, 64, 128],
}


def test_samples_lie_in_their_ranges_and_log_scale_spreads_decades(
    rng: np.random.Generator,
) -> None:
    space = HyperparameterSpace.from_config(TABLE)
    draws = [space.sample(rng) for _ in range(2000)]
    lr = np.array([d["learning_rate"] for d in draws])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # On a log scale each of the three decades gets about a third of the draws.
    assert abs(np.mean(lr < 1e-3) - 1 / 3) < 0.05
    assert {d["batch_size"] for d in draws} == {32, 64, 128}
    assert all(0 <= d["dropout"] <= 0.5 and 0 <= d["weight_decay"] <= 1e-3 for d in draws)


def test_evolution_children_keep_or_redraw_one_hyperparameter(combo_space: SearchSpace) -> None:
    hyper = HyperparameterSpace.from_config(TABLE)
    evo = RegularizedEvolution(
        combo_space, population_size=3, sample_size=3, seed=0, hyperparameters=hyper
    )
    parents = [evo.ask() for _ in range(3)]
    for i, p in enumerate(parents):
        evo.tell(p, [float(i)])
    best = parents[2].hyperparameters
    changed = []
    for _ in range(40):
        child = evo.ask().hyperparameters
        assert set(child) == set(TABLE)
        changed.append(sum(child[k] != best[k] for k in TABLE))
    assert max(changed) <= 1 and 0 in changed and 1 in changed


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"momentum": [0.9]}, r"\[search.hyperparameters\] unknown key 'momentum'"),
        ({"learning_rate": {"low": 0.0, "high": 0.1}}, r"learning_rate .* needs low < high"),
        ({"learning_rate": {"low": 0.1, "high": 0.01}}, r"learning_rate .* needs low < high"),
        ({"batch_size": {"low": 16, "high": 64}}, r"batch_size .* must be a list of choices"),
        ({"batch_size": [32, 0.5]}, r"batch_size .* each an integer > 0"),
        ({"dropout": {"low": 0.0, "high": 1.0}}, r"dropout .* both >= 0 and < 1"),
        ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, r"log .* needs low > 0"),
        ({"dropout": 0.5}, r"dropout = 0.5 must be a table"),
    ],
)
def test_bad_hyperparameters_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"search": {"hyperparameters": table}})


def test_dropout_leaves_identities_tensors_and_the_head_alone(combo_space: SearchSpace) -> None:
    arch = tuple(1 if node.role == "op" else 0 for node in combo_space.nodes)  # all dense
    model = combo_space.build(arch)
    keys = list(model.state_dict())
    assert set_dropout(model, 0.4) > 0
    assert list(model.state_dict()) == keys
    assert model.head.dropout is None
    x = {"cell": torch.ones(5, 48), "drug1": torch.ones(5, 32), "drug2": torch.ones(5, 32)}
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
