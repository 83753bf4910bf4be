"""The built-in kinds of space, the entries of :data:`~ckptnas.space.SPACES`.

An entry of the spaces' registry has two methods:

``check(config)``
    Refuses, with :class:`~ckptnas.errors.ConfigError` naming the key, a ``[space]`` table it
    cannot build from (called when the configuration is read).
``build(table, inputs, output_size)``
    The :class:`~ckptnas.space.ResolvedSpace` of the ``[space]`` table for data whose inputs
    have the shapes ``inputs`` (input name to one sample's shape) and a head of
    ``output_size``.

Entries are small: what builds the space (numpy, torch) is imported by ``build``, so checking
a configuration imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ckptnas.errors import ConfigError, SearchSpaceError
from ckptnas.space._activations import ACTIVATIONS

if TYPE_CHECKING:
    from ckptnas.config import Config, SpaceConfig
    from ckptnas.space._resolved import ResolvedSpace

Shapes = Mapping[str, tuple[int, ...]]


class SpaceKind(Protocol):
    """What the run asks an entry of :data:`~ckptnas.space.SPACES`."""

    def check(self, config: Config) -> None:
        """Refuse a ``[space]`` table this kind cannot build from."""

    def build(self, table: SpaceConfig, inputs: Shapes, output_size: int) -> ResolvedSpace:
        """The space of ``table`` for inputs of these shapes and a head this wide."""


def _refuse_factory(space: SpaceConfig) -> None:
    if space.factory:
        raise ConfigError(f"[space] factory is for kind = 'python', not kind = {space.kind!r}")


@dataclass(frozen=True)
class DenseKind:
    """The layered space of the ``[space]`` keys themselves (:class:`~ckptnas.space.SearchSpace`).

    Attributes
    ----------
    activations : tuple of str
        The activations ``[space] activations`` may list.
    """

    activations: tuple[str, ...] = ACTIVATIONS

    def check(self, config: Config) -> None:
        """Refuse ``factory`` and ``[space.options]``: the dense keys are ``[space]``'s own."""
        _refuse_factory(config.space)
        if config.space.options:
            raise ConfigError(
                "[space.options] are for kinds other than dense; the dense space takes its keys "
                "in [space] itself"
            )

    def build(self, table: SpaceConfig, inputs: Shapes, output_size: int) -> ResolvedSpace:
        """The dense space of ``table``; it needs ``(sample, feature)`` inputs."""
        from ckptnas.space._dense import SearchSpace
        from ckptnas.space._resolved import ResolvedSpace

        flat = [name for name, shape in inputs.items() if len(shape) != 1]
        if flat:
            raise SearchSpaceError(
                f"kind = 'dense' needs (sample, feature) inputs, but {flat[0]!r} has "
                f"one sample of shape {inputs[flat[0]]}; use kind = "
                "'conv1d', 'conv2d', 'cell' or 'python'"
            )
        sizes = {name: shape[0] for name, shape in inputs.items()}
        return ResolvedSpace(SearchSpace.from_config(table, sizes, output_size))


@dataclass(frozen=True)
class FactoryKind:
    """A built-in space made by a factory function, with ``[space.options]`` as its keywords.

    Attributes
    ----------
    factory : str
        The function, as ``"module:function"``, called as
        ``function(inputs, output_size, **options)``.
    """

    factory: str

    def check(self, config: Config) -> None:
        """Refuse ``factory``: the kind names its own."""
        _refuse_factory(config.space)

    def build(self, table: SpaceConfig, inputs: Shapes, output_size: int) -> ResolvedSpace:
        """The space the factory makes with ``[space.options]``."""
        return self.make(table.kind, inputs, output_size, table.options)

    def make(
        self, name: str, inputs: Shapes, output_size: int, options: Mapping[str, object]
    ) -> ResolvedSpace:
        """The space the factory makes with these options: how a run's record rebuilds it.

        A kind with this method is recorded by ``name`` and options, not pickled: the space it
        returns says so (:attr:`~ckptnas.space.ResolvedSpace.by_name`).
        """
        from ckptnas.space._factory import space_from_factory

        space = space_from_factory(name, self.factory, inputs, output_size, options)
        space.by_name = True
        return space


class PythonKind:
    """A user's space, made by ``[space] factory`` with ``[space.options]`` as its keywords."""

    def check(self, config: Config) -> None:
        """Refuse a ``factory`` that is not ``module:function`` or ``file.py:function``."""
        module, _, function = config.space.factory.rpartition(":")
        if not module or not function.isidentifier():
            raise ConfigError(
                f"[space] factory = {config.space.factory!r} must be 'module:function' or "
                "'path/to/file.py:function' when kind = 'python'"
            )

    def build(self, table: SpaceConfig, inputs: Shapes, output_size: int) -> ResolvedSpace:
        """The space ``[space] factory`` makes."""
        from ckptnas.space._factory import space_from_factory

        return space_from_factory(table.kind, table.factory, inputs, output_size, table.options)
