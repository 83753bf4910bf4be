"""What the trackers share: the run listener's two calls, and one warning when they fail.

A tracker writes to something outside the run (a tracking server, a directory), which may be
down, full or refuse a value. Its first failure is logged once as a warning and the tracker
stops: it makes no further call for the rest of the run. Trying again at every write of
``results.nc`` would cost the client loop the library's retries each time (MLflow waits minutes
by default before it gives up on a server) and repeat the same warning; a resumed run starts
trying again, and logs what the stopped tracker had left out.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import ClassVar

from ckptnas.errors import ConfigError
from ckptnas.storage import LineageRegistry
from ckptnas.tracking._feed import ResultFeed

logger = logging.getLogger(__name__)

#: The command that installs what the trackers need.
INSTALL = 'pip install -e ".[tracking]"'


def require(module: str, key: str) -> None:
    """Refuse, in one line, a ``[tracking]`` key whose library is not installed.

    Raises
    ------
    ConfigError
        If ``module`` cannot be imported here.
    """
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{key} needs {module}, which is not installed: {INSTALL}")


class Tracker:
    """A run listener that logs to somewhere outside the run; failing, it warns once and stops.

    Subclasses implement :meth:`start` (the run started, or a resumed one) and :meth:`write`
    (``results.nc`` was written). Both are called with the run's open registry.

    Parameters
    ----------
    where : str
        Where it logs, as the warning names it.
    """

    #: What it logs to, as the warning names it.
    WHAT: ClassVar[str] = ""

    def __init__(self, where: str) -> None:
        self.where = where
        #: Whether a call failed, after which the tracker makes no other.
        self.failed = False
        self.feed = ResultFeed()
        self._started = False

    def start(self, registry: LineageRegistry) -> None:
        """Open what the run logs to (the run started, or was resumed)."""

    def write(self, registry: LineageRegistry, running: bool) -> None:
        """Log what the registry holds that was not logged yet."""

    def close(self) -> None:
        """Release what :meth:`start` opened; also called after a failure."""

    # -- the listener ----------------------------------------------------------------------
    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        """Open the destination of the run's logs."""
        self._guarded(self._start_once, registry)

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        """Log the results new since the last call; close at the run's last write."""
        self._guarded(self._write, registry, running)

    def _start_once(self, registry: LineageRegistry) -> None:
        if not self._started:
            self.start(registry)
            self._started = True

    def _write(self, registry: LineageRegistry, running: bool) -> None:
        self._start_once(registry)  # a run that stops before it started still says so
        self.write(registry, running)
        if not running:
            self.close()
            self._started = False  # a listener used again (a resumed run) starts again

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        if self.failed:
            return
        try:
            step(*args)
        except Exception as exc:  # an observer's failure must not stop the search
            self.failed = True
            message = " ".join(str(exc).split())
            logger.warning(
                "%s logging (%s) failed, the search goes on without it: %s: %s",
                self.WHAT,
                self.where,
                type(exc).__name__,
                message[:300] + ("..." if len(message) > 300 else ""),
            )
            try:
                self.close()
            except Exception as again:  # closing after a failure may fail the same way
                logger.debug("closing %s after its failure: %s", self.WHAT, again)
