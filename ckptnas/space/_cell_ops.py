"""The cell space's vocabulary: the operations an edge may pick and the edges of the cell.

Both the space (which counts and describes the choices) and its network (which builds them)
read these, so they sit below both; the space alone imports its network.
"""

from __future__ import annotations

#: What an edge may do, in the order of its choices.
OPERATIONS = ("none", "skip", "conv1x1", "conv3x3", "avgpool3x3")

#: The cell's edges (from node, to node), in the order of the architecture's choices.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
