"""The registry of data sources: ``[data] kind`` names an entry of :data:`DATA_SOURCES`.

A third-party data source registers under the entry point group ``ckptnas.data_sources``; an
entry follows :class:`~ckptnas.data._sources.DataSource`.
"""

from __future__ import annotations

from typing import Any

from ckptnas.data._sources import NetCDF, Sklearn, SyntheticCombo
from ckptnas.plugins import Registry

#: ``[data] kind`` to the entry that checks ``[data]`` and loads the data.
DATA_SOURCES: Registry[Any] = Registry(
    "data source", key="[data] kind", group="ckptnas.data_sources"
)

DATA_SOURCES.register("synthetic_combo", SyntheticCombo())
DATA_SOURCES.register("sklearn", Sklearn())
DATA_SOURCES.register("netcdf", NetCDF())
