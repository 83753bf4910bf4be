"""Datasets: a synthetic Combo-like default, scikit-learn's bundled sets, and netCDF files.

Every dataset becomes a :class:`TabularData`: one or more named inputs of shape
``(sample, ...)`` (``(sample, feature)`` for tables, ``(sample, channel, length)`` or
``(sample, channel, height, width)`` for signals and images), one target, and a fixed, seeded
split into training and validation rows. Nothing is downloaded: the synthetic set is generated,
scikit-learn's sets (digits also as 1x8x8 images) ship with the package, and netCDF files are the
user's. ``[data] kind`` names an entry of :data:`DATA_SOURCES`, which a plugin may extend.

May import: :mod:`ckptnas.storage`, :mod:`ckptnas.config`, :mod:`ckptnas.plugins`,
:mod:`ckptnas.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
