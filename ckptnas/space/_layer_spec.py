"""A parametrised layer of the layered dense space: :class:`LayerSpec`.

The space plans its layers (and their identities) without torch and its network builds them
from those plans, so the record sits below both; the space alone imports its network.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerSpec:
    """A parametrised layer of one architecture, as the matcher and the store see it.

    Attributes
    ----------
    name : str
        Module name inside the built network, e.g. ``trunk.2``.
    identity : str
        Hash of type, position, configuration and the identity of its input signal.
    in_features, out_features : int
    activation : str
    node : int
        Index of the variable node that chose this layer (-1 for the head).
    """

    name: str
    identity: str
    in_features: int
    out_features: int
    activation: str
    node: int

    @property
    def tensors(self) -> dict[str, tuple[int, ...]]:
        """Tensor name to shape, as in the built module's ``state_dict``."""
        return {
            f"{self.name}.weight": (self.out_features, self.in_features),
            f"{self.name}.bias": (self.out_features,),
        }

    @property
    def n_params(self) -> int:
        """Number of scalar parameters of the layer."""
        return self.out_features * (self.in_features + 1)
