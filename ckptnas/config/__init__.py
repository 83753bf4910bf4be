"""The experiment configuration: TOML tables mapped onto frozen dataclasses, checked up front.

Every key has a default, so an empty file is a valid configuration (the quickstart). Unknown keys,
wrong types and out-of-range values raise :class:`~ckptnas.errors.ConfigError` naming the key,
before anything is trained or written.

The configuration is the schema of the tables only, one module per table. A key that names an
extension (``[data] kind``, ``[space] kind``, ``[search] strategy``, ``sampler`` and
``objectives``, ``[transfer] policy``, ``[cluster] kind``) is checked against the registry of
its subpackage (:mod:`ckptnas.plugins`), and the entry it names checks the options it reads.

May import: :mod:`ckptnas.errors`, :mod:`ckptnas.plugins`.
"""

from __future__ import annotations

from ckptnas.config._cluster import ClusterConfig
from ckptnas.config._config import Config, config_from_dict, load_config, named_entries, to_dict
from ckptnas.config._data import DataConfig, Task
from ckptnas.config._experiment import ExperimentConfig
from ckptnas.config._search import (
    HYPERPARAMETERS,
    Direction,
    Scheduler,
    SearchConfig,
    rung_epochs,
)
from ckptnas.config._space import SpaceConfig
from ckptnas.config._storage import Keep, StorageConfig
from ckptnas.config._tracking import TrackingConfig
from ckptnas.config._training import Device, Precision, TrainingConfig
from ckptnas.config._transfer import TransferConfig
from ckptnas.errors import ConfigError

__all__ = [
    "HYPERPARAMETERS",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "Device",
    "Direction",
    "ExperimentConfig",
    "Keep",
    "Precision",
    "Scheduler",
    "SearchConfig",
    "SpaceConfig",
    "StorageConfig",
    "Task",
    "TrackingConfig",
    "TrainingConfig",
    "TransferConfig",
    "config_from_dict",
    "load_config",
    "named_entries",
    "rung_epochs",
    "to_dict",
]
