"""The conv and pool layers of a conv space's architecture: :class:`FeatureLayer`.

The space plans them (shapes only, no torch) and its network builds them, so the record sits
below both; the space alone imports its network.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureLayer:
    """A conv (``kind = "conv"``) or pool (``"max"``, ``"avg"``) layer of a conv space."""

    kind: str
    in_channels: int
    out_channels: int
    kernel: int
    activation: str
