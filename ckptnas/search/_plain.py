"""Plain search: every candidate trains ``[training] epochs``, and none is continued."""

from __future__ import annotations

from typing import Self

from ckptnas.config import SearchConfig
from ckptnas.search._scheduler import Scheduler

__all__ = ["PlainScheduler"]


class PlainScheduler(Scheduler):
    """Every candidate trains the same epochs, once; ``[search] scheduler = "none"``.

    Parameters
    ----------
    epochs : int

    Examples
    --------
    >>> plain = PlainScheduler(3)
    >>> plain.next(lambda epochs: True)
    New(epochs=3)
    """

    continues = False

    def __init__(self, epochs: int) -> None:
        super().__init__((epochs,))

    @classmethod
    def from_config(cls, search: SearchConfig, training_epochs: int) -> Self:
        """Candidates of ``[training] epochs``."""
        return cls(training_epochs)
