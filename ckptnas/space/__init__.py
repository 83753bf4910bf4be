"""Search spaces: which networks a search may propose, and how to build them.

An architecture is a tuple of ints, one choice per variable node. A space samples and mutates
architectures, builds them as :class:`torch.nn.Module` objects with stable layer names, and
gives each parametrised layer an identity (a Merkle hash of its type, configuration and inputs)
that tells the search which layers two architectures share.

May import: :mod:`ckptnas.errors` only. torch is imported when a network is built.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
