"""``[space]``: the search space.

``kind`` names an entry of the spaces' registry (:mod:`ckptnas.space`), which checks the keys it
reads: the python space its ``factory``, the dense space the layered keys (its activations among
them) and that it takes no ``[space.options]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ckptnas.config._fields import all_positive, non_negative, option, positive, registered
from ckptnas.plugins import registry


def _activations() -> tuple[str, ...]:
    """The activations of the dense space, whose keys these are (its entry knows them)."""
    known: tuple[str, ...] = registry("space").get("dense").activations
    return known


def _activations_ok(xs: list[str]) -> bool:
    return len(xs) > 0 and all(a in _activations() for a in xs)


def _activation_words() -> str:
    return f"a non-empty list drawn from {', '.join(_activations())}"


@dataclass(frozen=True)
class SpaceConfig:
    """``[space]``: the search space; the other keys shape the layered (``dense``) space."""

    kind: str = registered("space", "dense")
    factory: str = option(
        "",
        why="for kind = python: 'module:function' or 'path/to/file.py:function', called as "
        "function(inputs, output_size, **options)",
    )
    options: dict[str, Any] = option(
        {}, why="a table of keyword arguments for the space of kinds other than dense"
    )
    num_nodes: int = option(4, positive, "> 0")
    input_nodes: int = option(1, non_negative, ">= 0")
    units: list[int] = option([16, 32, 64, 128], all_positive, "a non-empty list of positive ints")
    # Which names are activations is the dense space's to say: one list, which the networks
    # it builds map to torch modules.
    activations: list[str] = option(["relu", "tanh"], _activations_ok, _activation_words)
    skip_connections: bool = option(True)
    max_skip: int = option(2, positive, "> 0")
    shared_inputs: list[list[str]] = option([], why="groups of input names sharing a sub-network")
