"""The search: strategies that propose architectures, and the weight transfer between them.

Strategies (:class:`Strategy` and its subclasses) propose architectures and learn their
objectives through ``ask`` and ``tell``; a :class:`Scheduler` (plain search, :class:`ASHA`,
:class:`Hyperband`, :class:`MedianStopping`, or any of the scheduler registry) decides how long
each candidate trains and which one trains on. The :class:`DonorIndex` finds, among the candidates
trained so far, the one sharing the longest prefix with a new architecture;
:func:`plan_transfer` says which of its tensors the new candidate takes (a
:class:`TransferPlan`), and :func:`apply_plan` copies them into the built network.

May import: :mod:`ckptnas.space`, :mod:`ckptnas.storage` (for the records it keeps: a
:class:`TransferPlan` is a :class:`~ckptnas.storage.Transfer`), :mod:`ckptnas.config`,
:mod:`ckptnas.plugins`,
:mod:`ckptnas.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
