"""One self-contained HTML page per run: ``report.html``, also rewritten live during a search.

:func:`html_report` builds the page from a :class:`RunSnapshot`: the run's configuration and
counts, the candidate table, objectives, validation curves by stage, the lineage tree, donor
popularity and the worker timeline. BokehJS is embedded inline, so the file opens with no
network (2.1 MB for 30 candidates, 2.4 MB for 500, most of it BokehJS).
:func:`write_html_report` writes it for a run directory; :class:`LiveReport` rewrites it while
a search runs, with a reload in the page.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import TextIO

from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.events import DocumentReady
from bokeh.models import CustomJS, LayoutDOM
from bokeh.resources import INLINE

from ckptnas.analysis import _bokeh_figures as figures
from ckptnas.analysis import _bokeh_lineage as lineage_figures
from ckptnas.analysis._bokeh_table import candidate_table
from ckptnas.analysis._lineage_stats import plural
from ckptnas.analysis._report_data import RunSnapshot
from ckptnas.analysis._stages import describe_strategy
from ckptnas.storage import CandidateStatus, LineageRegistry, RunDir, refuse_overwrite, replacing

_TEMPLATE = (Path(__file__).with_name("_report_page.html")).read_text(encoding="utf-8")

# Restores, after a reload, the candidate that was clicked and where the page was scrolled to.
_RESTORE_JS = """
try {
  const chosen = sessionStorage.getItem(key + ":selected")
  if (nodes !== null && chosen !== null) {
    const k = Array.from(nodes.data.id).indexOf(Number(chosen))
    if (k >= 0) nodes.selected.indices = [k]
  }
  const scrolled = sessionStorage.getItem(key + ":scroll")
  if (scrolled !== null) {
    sessionStorage.removeItem(key + ":scroll")
    requestAnimationFrame(() => window.scrollTo(0, Number(scrolled)))
  }
} catch (e) {}
"""


def _roots(snap: RunSnapshot) -> list[LayoutDOM]:
    """The page's bokeh parts, in page order, each named for the template."""
    return [
        candidate_table(snap),
        figures.objective_figures(snap),
        figures.validation_curves(snap),
        lineage_figures.lineage_tree(snap),
        lineage_figures.donor_popularity(snap),
        figures.timeline(snap),
    ]


def _state(snap: RunSnapshot, running: bool) -> str:
    in_flight = plural(snap.count(CandidateStatus.PENDING), "candidate")
    if running:
        return f"running: {in_flight} in flight"
    if snap.count(CandidateStatus.PENDING):
        return (
            f"stopped with {in_flight} in flight (they train again with "
            "<code>ckptnas resume</code>)"
        )
    return "finished"


def _number(x: float, spec: str) -> str:
    return "none" if isinstance(x, float) and math.isnan(x) else format(x, spec)


def _shown(snap: RunSnapshot) -> str:
    """What a page bounded to some candidates holds, and where the rest is."""
    return (
        f"the best and the latest {snap.shown:,} of the {snap.total:,} candidates, to keep the "
        "page quick to draw and to load; results.nc, ckptnas summary and ckptnas lineage "
        "hold them all"
    )


def _facts(snap: RunSnapshot) -> list[tuple[str, str]]:
    """The run's headline numbers and settings, as (label, value) rows."""
    h = snap.headline
    ok = [r for r in snap.records if r.status == CandidateStatus.OK]  # the best among them
    # On a page bounded to some candidates, what is counted over those alone says so.
    of_shown = "" if snap.shown is None else " (of the candidates shown)"
    best = max(ok, key=lambda r: r.objective, default=None)
    depths = snap.lineage.depth_distribution()
    config = snap.config
    rows = [
        (
            "candidates",
            f"{snap.total} of {snap.budget} registered: {snap.count(CandidateStatus.OK)} ok, "
            f"{snap.count(CandidateStatus.FAILED)} failed, "
            f"{snap.count(CandidateStatus.PENDING)} pending",
        ),
        (
            "best objective",
            f"{best.objective:.4f} (candidate {best.id})" if best else "none yet",
        ),
        ("warm-started" + of_shown, _number(h["warm_share"], ".0%")),
        (
            "parameters inherited (mean over warm-started)" + of_shown,
            _number(h["mean_frac_params_transferred"], ".0%"),
        ),
        (
            f"first-epoch validation {snap.metric}{of_shown}",
            f"warm {_number(h['first_epoch_metric_warm'], '.4f')}, "
            f"scratch {_number(h['first_epoch_metric_scratch'], '.4f')}",
        ),
        (
            "lineage" + of_shown,
            f"{len(snap.lineage.donor_counts())} donors, deepest lineage "
            f"{max(depths, default=0)} generations",
        ),
        ("dataset", f"{snap.meta['dataset']} ({snap.meta['task']}, metric {snap.metric})"),
        (
            "transfer",
            f"policy {snap.meta['policy']}, "
            f"{'frozen' if snap.meta['freeze'] == '1' else 'not frozen'}",
        ),
    ]
    if snap.shown is not None:
        rows.insert(1, ("shown on this page", _shown(snap)))
    if config is not None:
        rows.append(("strategy", f"{describe_strategy(config)}, seed {snap.meta['seed']}"))
    rows += snap.held_out
    return [(html.escape(label), html.escape(value)) for label, value in rows]


def html_report(
    snap: RunSnapshot, *, refresh: float | None = None, dashboard_link: str = ""
) -> str:
    """The report page of a run, as HTML text.

    Parameters
    ----------
    snap : RunSnapshot
    refresh : float, optional
        Seconds after which the page reloads itself (while the run goes on); ``None`` for a
        page that stays as it is.
    dashboard_link : str
        The Dask dashboard's address, linked from a live page.

    Returns
    -------
    str
    """
    document = Document()
    for root in _roots(snap):
        document.add_root(root)
    key = snap.page_key
    document.js_on_event(
        DocumentReady,
        CustomJS(
            args={"nodes": document.select_one({"name": "lineage"}), "key": key}, code=_RESTORE_JS
        ),
    )
    running = refresh is not None
    variables = {
        "run_name": html.escape(snap.name),
        "metric": html.escape(snap.metric),
        "state": _state(snap, running),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.taken_at)),
        "facts": _facts(snap),
        "config": html.escape(snap.meta["config"]),
        "refresh_ms": int(1000 * refresh) if running and refresh else 0,
        "refresh_s": f"{refresh:g}" if refresh else "",
        "dashboard_link": html.escape(dashboard_link) if running else "",
        # A JavaScript string in the page's script ("<" escaped: no "</script>" can end it).
        "storage_key": json.dumps(key).replace("<", "\\u003c"),
    }
    return file_html(
        document,
        INLINE,
        title=f"ckptnas: {snap.name}",
        template=_TEMPLATE,
        template_variables=variables,
    )


def write_html_report(
    run_dir: str | Path,
    path: str | Path | None = None,
    *,
    refresh: float | None = None,
    dashboard_link: str = "",
    trust_code: bool = False,
) -> Path:
    """Write a run's report page, atomically.

    Parameters
    ----------
    run_dir : str or Path
        The run directory; its registry is read without being changed.
    path : str or Path, optional
        The file to write; ``<run_dir>/report.html`` by default.
    refresh, dashboard_link
        See :func:`html_report`.
    trust_code : bool
        Describe the architectures of a space recorded as Python code in words, which runs that
        code (see :meth:`RunSnapshot.read`); only for a run directory you trust.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> write_html_report("runs/quickstart")              # doctest: +SKIP
    PosixPath('runs/quickstart/report.html')
    """
    RunDir(run_dir).require_search()
    target = refuse_overwrite(path if path is not None else RunDir(run_dir).report)
    with LineageRegistry(run_dir, readonly=True) as registry:
        snap = RunSnapshot.read(registry, Path(run_dir).resolve().name, trust_code)
    return _write(target, html_report(snap, refresh=refresh, dashboard_link=dashboard_link))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a browser reloading at any moment reads the old page or the whole new one.
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


class LiveReport:
    """Keeps a run's ``report.html`` up to date while the search runs.

    A listener of the run (see :class:`ckptnas.runtime.RunListener`): the page is written when
    the run starts, rewritten each time ``results.nc`` is, and written once more, without its
    reload, when the run ends. Building the page takes the client's time: 0.65 s of one core
    for 30 candidates and 0.66 s for 500 (bokeh's models cost the time, not the data; 0.9 s
    for 2000), 0.7-1 s of wall time on a shared 2-core machine. So while the run goes on,
    each build is followed by a pause of its own duration divided by ``share`` before the
    next: with the default 0.1, 7-10 s, and at most a tenth of the client's time goes into
    the page, the rest to collecting results and submitting candidates.

    Parameters
    ----------
    run_dir : str or Path
    path : str or Path, optional
        ``<run_dir>/report.html`` by default.
    refresh : float
        Seconds between the browser's reloads of a live page.
    share : float
        The largest share of the client's time spent rebuilding the page.
    notice : text stream, optional
        Where to print, once the first page is written, its address and the Dask
        dashboard's (``sys.stdout`` for ``ckptnas run``).
    limit : int or None
        The most candidates the page draws (see :meth:`RunSnapshot.read`): past it, the best
        and the latest, and the page says so. Drawing all of 20,000 candidates took 12 s of
        the client's time and gave a 14 MB page.
    """

    def __init__(  # noqa: PLR0913  # each a setting of the page, all with defaults
        self,
        run_dir: str | Path,
        path: str | Path | None = None,
        refresh: float = 10.0,
        share: float = 0.1,
        notice: TextIO | None = None,
        limit: int | None = 2000,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.limit = limit
        self.path = Path(path) if path is not None else RunDir(run_dir).report
        self.refresh = refresh
        self.share = share
        self.notice = notice
        self.dashboard_link = ""
        self._next = -math.inf
        self.build_seconds = math.nan

    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        """Write the first page, linking the Dask dashboard, and say where both are."""
        self.dashboard_link = dashboard_link
        self._build(registry, running=True)
        if self.notice is not None:
            print(f"report: {self.path.resolve().as_uri()}", file=self.notice, flush=True)
            if dashboard_link:
                print(f"Dask dashboard: {dashboard_link}", file=self.notice, flush=True)

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        """Rewrite the page, unless it was rebuilt too recently; always at the end of a run."""
        if running and time.monotonic() < self._next:
            return
        self._build(registry, running)

    def _build(self, registry: LineageRegistry, running: bool) -> None:
        start = time.monotonic()
        # The run's own process already runs its space's code: describing it runs nothing new.
        snap = RunSnapshot.read(
            registry, name=self.run_dir.resolve().name, trust_code=True, limit=self.limit
        )
        refresh = self.refresh if running else None
        _write(self.path, html_report(snap, refresh=refresh, dashboard_link=self.dashboard_link))
        end = time.monotonic()
        self.build_seconds = end - start
        self._next = end + self.build_seconds / self.share
