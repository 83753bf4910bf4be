"""Following a search in MLflow and TensorBoard, as listeners of the run.

:class:`MlflowListener` logs one parent run per search, a nested run per candidate and, when
the search finishes, its best model with the preprocessing inside; :class:`TensorBoardListener`
writes each candidate's curves and the search's best-so-far as event files.
:func:`tracking_listeners` makes those that ``[tracking]`` asks for. Each logs only what is new
at each write of ``results.nc``, and a failing destination costs one warning, never the search.
MLflow, TensorBoard and torch load when a run starts, not with this package
(``pip install -e ".[tracking]"``).

May import: :mod:`ckptnas.runtime`, :mod:`ckptnas.storage`, :mod:`ckptnas.space`,
:mod:`ckptnas.config`, :mod:`ckptnas.plugins`, :mod:`ckptnas.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
