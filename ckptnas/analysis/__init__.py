"""After the search: gathering runs, statistics, figures and reports.

:func:`gather` puts several runs (policies x seeds) into one comparison dataset; the
statistics (:func:`mann_whitney`, :func:`speedup_summary`, :func:`format_table`) and the figures
read it. :func:`report_run` draws one run as PNG files, :func:`write_html_report` as one
interactive page (:class:`LiveReport` keeps it up to date while a search runs);
:func:`summarize` and :func:`top_candidates` give a run's headline numbers. :class:`Lineage`
answers questions about who inherited what from whom (ancestries, depths, donor popularity),
and :func:`export_lineage` writes the lineage as GraphML or DOT.

May import: :mod:`ckptnas.storage`, :mod:`ckptnas.space`, :mod:`ckptnas.config`,
:mod:`ckptnas.plugins`, :mod:`ckptnas.errors` (never the runtime: analysis runs
where the search's cluster and torch are not). matplotlib, scipy, bokeh and networkx load with
the figures, tests and exports that need them.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
