"""What continuing a candidate needs besides its weights, as named tensors and JSON.

Adam's per-parameter moments and step counts, which parameters it trains, its settings, and the
states of the two random generators training draws from (the batch order's and the default one
that dropout uses). Restored together with the weights, they make a continued run's curve and
weights those of training without a stop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

#: Prefix of the optimizer's tensors; ``<prefix><param index>.<key>``.
_OPTIMIZER = "optimizer."
_BATCH_ORDER = "rng.batch_order"
_DEFAULT = "rng.default"


def capture(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The training state after an epoch: tensors and a JSON-ready description."""
    tensors = {_BATCH_ORDER: generator.get_state(), _DEFAULT: torch.default_generator.get_state()}
    info: dict[str, Any] = {
        "trained": [name for name, p in model.named_parameters() if p.requires_grad]
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, values in state["state"].items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{_OPTIMIZER}{index}.{key}"] = value
        info["param_groups"] = json.loads(json.dumps(state["param_groups"]))
    return tensors, info


def restore(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    info: Mapping[str, Any],
    generator: torch.Generator,
    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
) -> torch.optim.Optimizer | None:
    """Put a captured state back: which parameters train, the optimizer, the generators.

    ``make_optimizer(params)`` builds the optimizer the state was captured from, over the
    parameters that train, in order; its settings are then those captured.
    """
    trained = set(info["trained"])
    for name, param in model.named_parameters():
        param.requires_grad_(name in trained)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer | None = make_optimizer(params) if params else None
    if optimizer is not None:
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            if name.startswith(_OPTIMIZER):
                index, key = name.removeprefix(_OPTIMIZER).split(".", 1)
                per_param.setdefault(int(index), {})[key] = value
        groups = [dict(g) for g in info["param_groups"]]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    generator.set_state(tensors[_BATCH_ORDER])
    torch.default_generator.set_state(tensors[_DEFAULT])
    return optimizer
