"""What every figure of ckptnas shares: colours, the output format, the y-axis clipping.

Figures are built on :class:`matplotlib.figure.Figure` objects (the Agg canvas), never through
``pyplot``, so plotting needs no display and leaves no global state behind.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ckptnas.storage import Init, refuse_overwrite

_DPI = 90
_COLORS = {"none": "tab:gray", "lcp": "tab:blue", "lcp+freeze": "tab:orange"}
#: Line colour of each full-training init.
INIT_COLORS = {Init.SCRATCH: "tab:gray", Init.CHECKPOINT: "tab:green"}


def policy_color(policy: str, k: int) -> str:
    """The colour of a policy (its ``k``-th place picks one for policies without their own)."""
    return _COLORS.get(policy, f"C{k + 3}")


def save(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG, making its folder; returns the path."""
    path = refuse_overwrite(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def clip_low(ax: Axes, values: np.ndarray) -> None:
    """Keep a few diverged candidates from squashing the plot; they stay counted in the test."""
    if values.size > 4:
        low = np.percentile(values, 2)
        span = np.max(values) - low
        if math.isfinite(span) and span > 0:
            ax.set_ylim(low - 0.1 * span, np.max(values) + 0.05 * span)
