"""Extension points: a name-to-builder :class:`Registry` per kind of extension.

Each subpackage owns the registries of what it builds (``space`` the spaces, ``search`` the
strategies, schedulers and transfer policies, ``runtime`` the cluster kinds, :mod:`ckptnas.data`
the data sources): a built-in entry is one :meth:`Registry.register` line beside the others, and
a third-party package adds entries through a Python entry point of the registry's group, as
xarray finds its backends::

    # the plugin's pyproject.toml
    [project.entry-points."ckptnas.schedulers"]
    bohb = "my_package.bohb:BOHB"

An entry may be given as ``"module:attribute"`` text, imported when it is first used: a
registry lists its names without importing torch or Optuna, so checking a configuration and
reading a finished run stay light.

An entry is the object its registry's protocol describes, documented beside the registry: an
instance with methods for spaces, strategies, samplers, objectives, cluster kinds and data
sources, and a callable making the policy of a space for transfer policies. An entry may have a
``check(config)`` method: the configuration calls it, once every table is
read, with the whole :class:`~ckptnas.config.Config`, and it raises
:class:`~ckptnas.errors.ConfigError` naming the key of an option it refuses. What else an entry
offers is the owning registry's protocol (documented beside it).

This module sits at the bottom of the package (it imports :mod:`ckptnas.errors` only). The
configuration checks a name against its registry through :func:`registry`, which imports the
owning subpackage's light ``_registry`` module (or the module beside it that defines the
registry) by name on first use.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from ckptnas.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """The named entries of one extension point.

    Parameters
    ----------
    kind : str
        What an entry is, in words (``"space"``, ``"scheduler"``).
    key : str
        The configuration key that names an entry (``"[space] kind"``), for error messages.
    group : str
        The Python entry point group that third-party packages register under.

    Examples
    --------
    >>> colours = Registry("colour", key="[paint] colour", group="example.colours")
    >>> colours.register("red", (255, 0, 0))
    >>> colours.get("red")
    (255, 0, 0)
    >>> colours.get("mauve")
    Traceback (most recent call last):
    ...
    ckptnas.errors.ConfigError: [paint] colour = 'mauve' must be red
    """

    def __init__(self, kind: str, key: str, group: str) -> None:
        self.kind = kind
        self.key = key
        self.group = group
        self._entries: dict[str, T | str] = {}
        self._plugins_loaded = False

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r}, names={list(self.names())})"

    def register(self, name: str, entry: T | str) -> None:
        """Add an entry: the thing itself, or ``"module:attribute"`` to import on first use."""
        if name in self._entries:
            raise ValueError(f"a {self.kind} named {name!r} is registered already")
        self._entries[name] = entry

    def names(self) -> tuple[str, ...]:
        """Every installed name: built-in entries first, then those of entry points."""
        self._load_plugins()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises
        ------
        ConfigError
            When no installed entry has that name; the message lists those that do.
        """
        if name not in self:
            raise ConfigError(f"{self.key} = {name!r} must be {self.choices()}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = _import(entry, f"{self.kind} {name!r}")
        return entry

    def choices(self) -> str:
        """The installed names in words: ``one of a, b, c`` (or ``a or b``)."""
        names = self.names()
        if not names:
            return f"a registered {self.kind}, and none is installed"
        return f"one of {', '.join(names)}" if len(names) > 2 else " or ".join(names)

    def _load_plugins(self) -> None:
        """Add the entry points of this registry's group (once); built-in names win."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=self.group):
            if point.name in self._entries:
                logger.warning(
                    "entry point %r of group %r ignored: %s %r is built in",
                    point.value,
                    self.group,
                    self.kind,
                    point.name,
                )
                continue
            self._entries[point.name] = point.value


def _import(reference: str, what: str) -> Any:
    """The object ``"module:attribute"`` names, or a one-line error naming the entry."""
    module_name, _, attribute = reference.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            found = getattr(found, part)
    except Exception as exc:  # a plugin's import may fail in any way: say which plugin
        raise ConfigError(f"the {what} ({reference}) cannot be loaded: {exc!r}") from None
    return found


#: Where each registry is defined: the owning subpackage's light ``_registry`` module, or for
#: the samplers ``search._samplers`` (which the Optuna strategy imports, and ``_registry`` too).
_LOCATIONS = {
    "space": "ckptnas.space._registry:SPACES",
    "strategy": "ckptnas.search._registry:STRATEGIES",
    "sampler": "ckptnas.search._samplers:SAMPLERS",
    "scheduler": "ckptnas.search._registry:SCHEDULERS",
    "policy": "ckptnas.search._registry:POLICIES",
    "objective": "ckptnas.search._registry:OBJECTIVES",
    "cluster": "ckptnas.runtime._registry:CLUSTERS",
    "data": "ckptnas.data._registry:DATA_SOURCES",
}


def registry(kind: str) -> Registry[Any]:
    """The registry of one kind of extension (``"space"``, ``"scheduler"``, ...).

    Examples
    --------
    >>> "lcp" in registry("policy")
    True
    """
    if kind not in _LOCATIONS:
        raise KeyError(f"no registry of {kind!r}; registries: {', '.join(_LOCATIONS)}")
    found: Registry[Any] = _import(_LOCATIONS[kind], f"registry of {kind}s")
    return found


def registry_kinds() -> tuple[str, ...]:
    """The kinds of extension that have a registry."""
    return tuple(_LOCATIONS)
