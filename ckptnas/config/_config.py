"""A whole configuration: :class:`Config`, read from TOML and checked before anything runs.

The tables check their own keys (types, ranges); :func:`config_from_dict` then checks what
relates keys of several tables, and last asks each extension the configuration names (its data
source, space, strategy, objectives, transfer policy and cluster kind) to check the options it
reads, through the entry's ``check(config)`` hook.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ckptnas.config._cluster import ClusterConfig
from ckptnas.config._data import DataConfig
from ckptnas.config._experiment import ExperimentConfig
from ckptnas.config._fields import table_from_dict
from ckptnas.config._search import SearchConfig, check_search
from ckptnas.config._space import SpaceConfig
from ckptnas.config._storage import StorageConfig
from ckptnas.config._tracking import TrackingConfig
from ckptnas.config._training import TrainingConfig
from ckptnas.config._transfer import TransferConfig
from ckptnas.errors import ConfigError
from ckptnas.plugins import registry


@dataclass(frozen=True)
class Config:
    """A whole experiment configuration, one attribute per TOML table."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)

    def replace(self, table: str, **values: Any) -> Config:
        """Return a copy with some keys of one table replaced (and checked).

        Examples
        --------
        >>> Config().replace("experiment", max_candidates=5).experiment.max_candidates
        5
        """
        merged = {**to_dict(self), table: {**to_dict(self)[table], **values}}
        return config_from_dict(merged)

    def to_toml(self) -> str:
        """The configuration as TOML text, every key resolved."""
        return tomli_w.dumps(to_dict(self))

    def to_json(self) -> str:
        """The configuration as JSON text, every key resolved."""
        return json.dumps(to_dict(self), sort_keys=True)


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as nested plain dictionaries."""
    return dataclasses.asdict(config)


def config_from_dict(values: Mapping[str, Any]) -> Config:
    """Build and check a :class:`Config` from nested dictionaries (the parsed TOML).

    Parameters
    ----------
    values : mapping
        Table name to a mapping of keys to values. Missing tables and keys take their defaults.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        On an unknown table or key, a wrong type, an out-of-range value, a name no installed
        extension has, or options the named extension refuses.
    """
    tables = {f.name: f.default_factory for f in dataclasses.fields(Config)}
    for name in values:
        if name not in tables:
            raise ConfigError(
                f"unknown table [{name if name.isprintable() else repr(name)}]; "
                f"known tables: {', '.join(f'[{t}]' for t in tables)}"
            )
    built = {
        name: table_from_dict(factory, name, values.get(name, {}))  # type: ignore[arg-type]
        for name, factory in tables.items()
    }
    config = Config(**built)
    # Each named entry checks the keys and options it reads (the scheduler also the epoch
    # budget against a first training), then the generic checks across tables run.
    for entry in named_entries(config):
        check = getattr(entry, "check", None)
        if callable(check):
            check(config)
    _check_across_tables(config)
    return config


def named_entries(config: Config) -> Iterator[Any]:
    """The registry entry of every name the configuration gives, in the order of its tables."""
    for table in dataclasses.fields(config):
        section = getattr(config, table.name)
        for key in dataclasses.fields(section):
            kind = key.metadata.get("registry")
            if kind is None:
                continue
            value = getattr(section, key.name)
            for name in value if isinstance(value, list) else [value]:
                yield registry(kind).get(name)


def _check_across_tables(config: Config) -> None:
    # The epoch budget against the first training is the scheduler's check (its options come
    # first): see ckptnas.search.Scheduler.check.
    check_search(config.search, config.training.epochs)
    data = config.data
    if data.val_fraction + data.test_fraction >= 1:
        raise ConfigError(
            f"[data] val_fraction = {data.val_fraction} and test_fraction = "
            f"{data.test_fraction} leave no training rows: their sum must be below 1"
        )
    cluster = config.cluster
    if cluster.adapt_maximum and cluster.adapt_maximum < cluster.adapt_minimum:
        raise ConfigError(
            f"[cluster] adapt_maximum = {cluster.adapt_maximum} must not be below "
            f"adapt_minimum = {cluster.adapt_minimum}"
        )


def load_config(path: str | Path) -> Config:
    """Read and check a TOML configuration file.

    Parameters
    ----------
    path : str or Path
        The TOML file.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or holds a bad key or value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _paths_from(config_from_dict(values), path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _paths_from(config: Config, folder: Path) -> Config:
    """The configuration with its relative paths taken from ``folder`` (the file's), as text.

    A configuration file names its data next to itself; read from anywhere, it finds them.
    """
    for table, key in (("data", "path"), ("experiment", "out")):
        value = getattr(getattr(config, table), key)
        if value and not Path(value).is_absolute():
            config = config.replace(table, **{key: str((folder / value).resolve())})
    module, _, function = config.space.factory.rpartition(":")
    if module.endswith(".py") and not Path(module).is_absolute():
        config = config.replace("space", factory=f"{(folder / module).resolve()}:{function}")
    return dataclasses.replace(
        config,
        tracking=config.tracking.resolved(folder),
        transfer=config.transfer.resolved(folder),
    )
