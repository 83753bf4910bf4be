"""TensorBoard: each candidate's curves as a TensorBoard run, and the search's best-so-far.

Under ``<log_dir>/<run name>/``, each candidate has its own folder ``candidate-<id>`` (five
digits, so TensorBoard lists them in order) holding the scalars ``train_loss``, ``val_loss``,
``val_metric`` and ``epoch_time`` stepped by epoch (1 is the first): TensorBoard draws the
candidates' curves of one scalar on one chart, one colour per candidate. The folder ``search``
holds ``best_so_far`` (the highest objective so far) and ``objective`` (each candidate's),
stepped by the number of candidates finished. Point ``tensorboard --logdir <log_dir>`` at the
folder to follow several runs side by side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from ckptnas.storage import CURVE_NAMES, LineageRegistry
from ckptnas.tracking._base import Tracker, require
from ckptnas.tracking._feed import ResultFeed, Update

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

#: The folder of the run-level scalars, beside the candidates' folders.
SEARCH = "search"


def candidate_folder(candidate_id: int) -> str:
    """The folder of one candidate's scalars: ``candidate-00007``."""
    return f"candidate-{candidate_id:05d}"


class TensorBoardListener(Tracker):
    """Write a search's curves as TensorBoard event files while it runs.

    A candidate a scheduler continues (ASHA) gets its new epochs in its own folder. A resumed
    run reads what the stopped one wrote (each candidate's last epoch) and goes on from there.

    Parameters
    ----------
    log_dir : str or Path
        The folder TensorBoard is pointed at; the run writes into a folder of its own in it.
    run_name : str
        That folder's name; empty: the run directory's name.

    Raises
    ------
    ConfigError
        If TensorBoard is not installed.

    Examples
    --------
    >>> listener = TensorBoardListener("tensorboard")                       # doctest: +SKIP
    >>> Experiment(config, "runs/demo", listeners=[listener]).run()         # doctest: +SKIP
    """

    WHAT = "TensorBoard"

    def __init__(self, log_dir: str | Path, run_name: str = "") -> None:
        require("tensorboard", "[tracking] tensorboard_dir")
        super().__init__(str(log_dir))
        self.log_dir = Path(log_dir)
        self.run_name = run_name
        #: The run's folder under ``log_dir``, once the run started.
        self.folder = self.log_dir / run_name if run_name else self.log_dir
        self._search: SummaryWriter | None = None

    def start(self, registry: LineageRegistry) -> None:
        """Open the run's folder; learn what a stopped run wrote in it."""
        from torch.utils.tensorboard import SummaryWriter

        self.folder = self.log_dir / (self.run_name or registry.run_dir.root.name)
        self.feed = ResultFeed(self._logged_before)
        self._search = SummaryWriter(str(self.folder / SEARCH))

    def write(self, registry: LineageRegistry, running: bool) -> None:
        """Write the epochs and results new since the last write."""
        search = self._search
        assert search is not None
        for update in self.feed.updates(registry):
            self._write_candidate(update)
            if math.isfinite(update.best_so_far):
                search.add_scalar("best_so_far", update.best_so_far, update.finished)
            if update.logged == 0 and math.isfinite(update.record.objective):
                search.add_scalar("objective", update.record.objective, update.finished)
        search.flush()

    def close(self) -> None:
        """Close the run-level event file."""
        if self._search is not None:
            self._search.close()
            self._search = None

    def _write_candidate(self, update: Update) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A writer per update, closed at once: a long search has many candidates, and an open
        # writer holds a file and a thread.
        with SummaryWriter(str(self.folder / candidate_folder(update.record.id))) as writer:
            for epoch, row in enumerate(update.curve, start=1):
                if epoch > update.logged:
                    for name, value in zip(CURVE_NAMES, row, strict=True):
                        writer.add_scalar(name, value, epoch)

    def _logged_before(self, candidate_id: int) -> int | None:
        """The last epoch an earlier process wrote of a candidate; ``None``: no folder."""
        folder = self.folder / candidate_folder(candidate_id)
        if not folder.is_dir():
            return None
        from tensorboard.backend.event_processing.event_accumulator import (
            SCALARS,
            EventAccumulator,
        )

        events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
        events.Reload()
        if "val_metric" not in events.Tags()[SCALARS]:
            return 0
        return max(int(s.step) for s in events.Scalars("val_metric"))
