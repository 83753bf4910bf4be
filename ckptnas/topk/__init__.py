"""Full training of a finished search's best candidates, from scratch and from checkpoints.

:func:`train_topk` trains the ``k`` best candidates to convergence on the Dask cluster, once
from random weights and once from the weights the search left in their checkpoints, records
each run in ``topk.sqlite`` and writes ``topk.nc`` with the time each took to reach the same
target.

May import: :mod:`ckptnas.runtime`, :mod:`ckptnas.storage`, :mod:`ckptnas.space`,
:mod:`ckptnas.config`, :mod:`ckptnas.plugins`, :mod:`ckptnas.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
