"""What every search space shares: the architecture type."""

from __future__ import annotations

#: An architecture: one choice (an index into the node's options) per variable node.
Architecture = tuple[int, ...]
