"""ckptnas: neural architecture search on Dask with checkpoint-based warm starts.

Each new candidate starts from the trained tensors of the most similar candidate evaluated
before it (the longest common prefix of layers), read from that candidate's checkpoint.
"""

from __future__ import annotations

from ckptnas.config import Config, load_config
from ckptnas.data import TabularData, load_data
from ckptnas.errors import (
    CheckpointError,
    CkptnasError,
    ConfigError,
    DataError,
    RunDirectoryError,
    SearchExhaustedError,
    SearchSpaceError,
)
from ckptnas.lineage import LineageRegistry
from ckptnas.models import load_model
from ckptnas.results import load_results
from ckptnas.runner import Experiment, resume_experiment
from ckptnas.space import SearchSpace
from ckptnas.store import CheckpointStore
from ckptnas.strategies import RandomSearch, RegularizedEvolution, Strategy
from ckptnas.transfer import TransferPlan, apply_plan, plan_transfer

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "CkptnasError",
    "Config",
    "ConfigError",
    "DataError",
    "Experiment",
    "LineageRegistry",
    "RandomSearch",
    "RegularizedEvolution",
    "RunDirectoryError",
    "SearchExhaustedError",
    "SearchSpace",
    "SearchSpaceError",
    "Strategy",
    "TabularData",
    "TransferPlan",
    "apply_plan",
    "load_config",
    "load_data",
    "load_model",
    "load_results",
    "plan_transfer",
    "resume_experiment",
]
