"""Sampling and mutating architectures of spaces whose nodes each pick one of ``n`` choices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._protocol import Architecture


def check_choices(
    arch: Sequence[int], n_choices: Sequence[int], names: Sequence[str]
) -> Architecture:
    """``arch`` as a tuple, or raise if it is not one choice per node, each in range."""
    arch = tuple(int(a) for a in arch)
    if len(arch) != len(n_choices):
        raise SearchSpaceError(f"architecture has {len(arch)} choices, space has {len(n_choices)}")
    for value, n, name in zip(arch, n_choices, names, strict=True):
        if not 0 <= value < n:
            raise SearchSpaceError(f"choice {value} of node {name} is outside 0..{n - 1}")
    return arch


def sample_choices(n_choices: Sequence[int], rng: np.random.Generator) -> Architecture:
    """One uniform choice per node."""
    return tuple(int(rng.integers(n)) for n in n_choices)


def mutate_choices(
    arch: Architecture, n_choices: Sequence[int], rng: np.random.Generator, bias: float = 0.0
) -> Architecture:
    """Change one node's choice; node ``i`` is picked with weight ``(i + 1) ** bias``.

    As :meth:`~ckptnas.space.SearchSpace.mutate`: larger ``bias`` favours later nodes, which
    lengthens the prefix a child shares with its parent.
    """
    mutable = [i for i, n in enumerate(n_choices) if n > 1]
    weights = np.array([(i + 1.0) ** bias for i in mutable])
    i = mutable[int(rng.choice(len(mutable), p=weights / weights.sum()))]
    new = int(rng.integers(n_choices[i] - 1))
    new += new >= arch[i]  # skip the current choice: the mutation always changes the node
    return (*arch[:i], new, *arch[i + 1 :])
