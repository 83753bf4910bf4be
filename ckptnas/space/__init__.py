"""Search spaces: which networks a search may propose, and how to build them.

An architecture is a tuple of ints, one choice per variable node. A space samples and mutates
architectures and builds them as :class:`torch.nn.Module` objects (the :class:`Space`
protocol). Each parametrised layer has an identity (a Merkle hash of its type, configuration,
tensor shapes and inputs) that tells the search which layers two architectures share: given by
the space, or derived by tracing the built module (:func:`traced_layers`).

May import: :mod:`ckptnas.errors` and :mod:`ckptnas.plugins` only. torch is imported when a
network is built.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
