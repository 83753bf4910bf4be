"""ckptnas: neural architecture search on Dask with checkpoint-based warm starts.

Each new candidate starts from the trained tensors of the most similar candidate evaluated
before it (the longest common prefix of layers), read from that candidate's checkpoint.

The package is laid out by stage: :mod:`ckptnas.space` (which networks), :mod:`ckptnas.search`
(which one next, and what it inherits), :mod:`ckptnas.runtime` (running candidates on Dask),
:mod:`ckptnas.storage` (everything on disk), :mod:`ckptnas.topk` (full training of the best),
:mod:`ckptnas.tracking` (following a run in MLflow and TensorBoard) and
:mod:`ckptnas.analysis` (comparisons, statistics, figures). Names load on first use, so
``import ckptnas`` imports neither torch nor Dask: reading a run needs neither.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
