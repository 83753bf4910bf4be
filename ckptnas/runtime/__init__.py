"""Running a search on Dask: the client loop, the work on the workers, and the records between.

:class:`Experiment` checks a configuration and a run directory and runs the loop
(:mod:`~ckptnas.runtime._loop`): it asks the strategy, plans each candidate's transfer, submits
it through the :class:`Submitter` (the one place that talks to Dask) and records each result.
On the workers, :func:`train_candidate` builds, warm-starts, trains and checkpoints a candidate
from a :class:`CandidateSpec` and returns a :class:`CandidateResult`. Whoever follows a run (the
live HTML report of ``ckptnas run``) is a :class:`RunListener`, told when the run starts and
each time it writes ``results.nc``.

May import: :mod:`ckptnas.space`, :mod:`ckptnas.search`, :mod:`ckptnas.storage`,
:mod:`ckptnas.data`, :mod:`ckptnas.config`, :mod:`ckptnas.plugins`, :mod:`ckptnas.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
