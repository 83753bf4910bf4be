"""Who follows a run while it goes: :class:`RunListener`, told when it starts and writes results.

The runtime never imports the analysis; the command line passes the live HTML report
(:class:`ckptnas.analysis.LiveReport`) as a listener, which has these methods without knowing
this protocol. A listener only observes: when one raises, the run logs a warning and goes on,
since a page that cannot be drawn is no reason to stop hours of search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from distributed import Client

from ckptnas.storage import LineageRegistry

logger = logging.getLogger(__name__)


class RunListener(Protocol):
    """What a run tells the objects that follow it (a live report, a notice at start-up).

    Examples
    --------
    >>> from ckptnas.analysis import LiveReport
    >>> Experiment(config, "runs/demo", listeners=[LiveReport("runs/demo")]).run()
    ...                                                            # doctest: +SKIP
    """

    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        """The first candidates are submitted; ``dashboard_link`` is the Dask dashboard's."""

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        """``results.nc`` was just rewritten; ``running`` is false for the run's last write."""


def dashboard_link(client: Client) -> str:
    """The Dask dashboard's address, or ``""`` when the scheduler serves none."""
    try:
        return str(client.dashboard_link or "")
    except (KeyError, AttributeError):  # a scheduler started without its dashboard
        return ""


class Listeners:
    """The listeners of one run, each told in turn; one that raises is logged and skipped."""

    def __init__(self, listeners: Sequence[RunListener]) -> None:
        self.listeners = tuple(listeners)

    def run_started(self, registry: LineageRegistry, client: Client) -> None:
        """Tell every listener that the run started, with the Dask dashboard's address."""
        link = dashboard_link(client) if self.listeners else ""
        for listener in self.listeners:
            self._call(listener, listener.run_started, registry, link)

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        """Tell every listener that ``results.nc`` was rewritten."""
        for listener in self.listeners:
            self._call(listener, listener.results_written, registry, running)

    @staticmethod
    def _call(listener: RunListener, method: Callable[..., None], *args: object) -> None:
        try:
            method(*args)
        except Exception as exc:  # an observer's failure must not stop the search
            logger.warning(
                "%s.%s failed: %s: %s",
                type(listener).__name__,
                method.__name__,
                type(exc).__name__,
                exc,
            )
