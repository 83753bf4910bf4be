"""``[storage]``: which checkpoints a run keeps, and how much disk they may take.

By default every candidate's checkpoint is kept for ever. ``keep = "useful"`` deletes those no
candidate can be planned from, continued from or fully trained from any more, and ``max_bytes``
caps the disk the run's checkpoints take; :mod:`ckptnas.runtime` decides and storage deletes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ckptnas.config._fields import choice, non_negative, option, positive


class Keep(StrEnum):
    """``[storage] keep``: which checkpoints a run keeps."""

    #: Every checkpoint, for ever.
    ALL = "all"
    #: Only those a candidate may still be planned, continued or fully trained from.
    USEFUL = "useful"


@dataclass(frozen=True)
class StorageConfig:
    """``[storage]``: which checkpoints a run keeps, and how much disk they may take."""

    keep: str = choice(Keep.ALL)
    # 5, as `ckptnas train-topk -k` by default: the candidates full training starts from are
    # the ones never deleted.
    keep_top: int = option(5, positive, "> 0")
    # 0 and not absent for "no cap": every key is written out when a run records its
    # configuration, and TOML has no null.
    max_bytes: int = option(0, non_negative, ">= 0 bytes (0: no cap)")

    @property
    def deletes(self) -> bool:
        """Whether any checkpoint may be deleted."""
        return self.keep == Keep.USEFUL or self.max_bytes > 0
