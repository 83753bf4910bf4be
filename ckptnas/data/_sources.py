"""The built-in data sources, the entries of :data:`~ckptnas.data.DATA_SOURCES`.

An entry of the data sources' registry has:

``check(config)``
    Refuses, with :class:`~ckptnas.errors.ConfigError` naming the key, a ``[data]`` table it
    cannot load from (called when the configuration is read).
``files(table)``
    The files the ``[data]`` table names, which must exist where the data are built.
``load(table, seed)``
    The dataset's name, its inputs (input name to a ``(sample, ...)`` array) and its target,
    raw: :func:`~ckptnas.data.load_data` checks, splits and scales them.
``split_labels(table)`` (optional)
    The split of each row the data carry (``train``, ``val`` or ``test``), for a table that
    names one (``[data] split_variable``); a source without it splits rows by seed only.

Entries are small: numpy, xarray and scikit-learn are imported by ``load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ckptnas.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from ckptnas.config import Config, DataConfig

Arrays = tuple[str, "dict[str, np.ndarray]", "np.ndarray"]


class DataSource(Protocol):
    """What the run asks an entry of :data:`~ckptnas.data.DATA_SOURCES`."""

    def check(self, config: Config) -> None:
        """Refuse a ``[data]`` table this source cannot load from."""

    def files(self, table: DataConfig) -> list[str]:
        """The files the table names."""

    def load(self, table: DataConfig, seed: int) -> Arrays:
        """The dataset's name, raw inputs and raw target."""


def refuse_split_variable(config: Config) -> None:
    """Refuse ``[data] split_variable`` for a source whose data carry no split."""
    if config.data.split_variable:
        raise ConfigError(
            f"[data] split_variable is for netCDF data, not kind = {config.data.kind!r}: "
            "its rows are split by val_fraction and test_fraction"
        )


class SyntheticCombo:
    """Generated Combo-like drug-pair data (:func:`~ckptnas.data.synthetic_combo`)."""

    def check(self, config: Config) -> None:
        """Refuse a ``[training] batch_size`` above ``[data] n_samples``."""
        refuse_split_variable(config)
        if config.training.batch_size > config.data.n_samples:
            raise ConfigError(
                f"[training] batch_size = {config.training.batch_size} exceeds "
                f"[data] n_samples = {config.data.n_samples}"
            )

    def files(self, table: DataConfig) -> list[str]:
        """None: the data are generated."""
        return []

    def load(self, table: DataConfig, seed: int) -> Arrays:
        """``n_samples`` rows with ``noise``, seeded."""
        from ckptnas.data._synthetic import synthetic_combo

        inputs, target = synthetic_combo(table.n_samples, seed=seed, noise=table.noise)
        return table.kind, inputs, target


class Sklearn:
    """A dataset bundled with scikit-learn, ``[data] name``.

    Attributes
    ----------
    names : tuple of str
        The datasets it loads; ``digits_images`` is ``digits`` as 1x8x8 images (channel,
        height, width).
    """

    names = ("diabetes", "breast_cancer", "digits", "digits_images")

    def check(self, config: Config) -> None:
        """Refuse a ``name`` that is not one of :attr:`names`."""
        refuse_split_variable(config)
        if config.data.name not in self.names:
            raise ConfigError(
                f"[data] name = {config.data.name!r} must be diabetes, breast_cancer, digits or "
                f"digits_images when kind = {config.data.kind!r}"
            )

    def files(self, table: DataConfig) -> list[str]:
        """None: the data ship with scikit-learn."""
        return []

    def load(self, table: DataConfig, seed: int) -> Arrays:
        """The dataset, its one input named ``x``."""
        from ckptnas.data._sklearn import load_sklearn

        inputs, target = load_sklearn(table.name)
        return table.name, inputs, target


class NetCDF:
    """The variables ``inputs`` and ``target`` of the netCDF file ``path``."""

    def check(self, config: Config) -> None:
        """Require ``path``, ``inputs`` and ``target``."""
        data, kind = config.data, repr(config.data.kind)
        if not data.path:
            raise ConfigError(f"[data] path must name a netCDF file when kind = {kind}")
        if not data.inputs:
            raise ConfigError(f"[data] inputs must list at least one variable when kind = {kind}")
        if not data.target:
            raise ConfigError(f"[data] target must name a variable when kind = {kind}")

    def files(self, table: DataConfig) -> list[str]:
        """The file ``path``."""
        return [table.path]

    def load(self, table: DataConfig, seed: int) -> Arrays:
        """The inputs and target, named after the file."""
        from ckptnas.data._netcdf import load_netcdf

        inputs, target = load_netcdf(table)
        return Path(table.path).stem, inputs, target

    def split_labels(self, table: DataConfig) -> np.ndarray | None:
        """The values of ``split_variable``, if the table names one."""
        if not table.split_variable:
            return None
        from ckptnas.data._netcdf import load_split_labels

        return load_split_labels(table)
