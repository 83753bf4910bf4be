"""Field helpers of the configuration tables: defaults, value checks and type checks.

A table is a frozen dataclass whose fields carry, in their metadata, the check a value must
pass and its words in errors (``why``, also the "allowed" column of the generated reference),
or the extension registry that a name must be found in (``registry``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import field
from enum import StrEnum
from typing import Any

from ckptnas.errors import ConfigError
from ckptnas.plugins import registry

Check = Callable[[Any], bool]

#: What a value must be, in words: text, or a function giving it (words that list the entries
#: of a registry are made when asked, as plugins may add entries).
Why = str | Callable[[], str]


def option(default: Any, check: Check | None = None, why: Why = "") -> Any:
    """A dataclass field with a default and a validity check shown in errors as ``why``."""
    meta = {"check": check, "why": why}
    if isinstance(default, list | dict):
        # A fresh copy per instance.
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def choice(default: StrEnum) -> Any:
    """A field holding one value of a closed set (``default``'s enum), checked and named."""
    values = [c.value for c in type(default)]
    return option(default.value, lambda x: x in values, words(values))


def registered(kind: str, default: str) -> Any:
    """A field naming an entry of the extension registry of ``kind`` (see :mod:`ckptnas.plugins`).

    The name is checked against the installed entries when a table is read; the entry then
    checks the options it reads (its ``check`` hook, called once every table is read).
    """
    return field(
        default=default, metadata={"registry": kind, "why": lambda: registry(kind).choices()}
    )


def why(f: dataclasses.Field[Any]) -> str:
    """The words of what a field's value must be (empty when anything of its type goes)."""
    words_or_function: Why = f.metadata.get("why", "")
    return words_or_function() if callable(words_or_function) else words_or_function


def words(values: typing.Sequence[str]) -> str:
    """``one of a, b, c`` or ``a or b``, as the errors say it."""
    return f"one of {', '.join(values)}" if len(values) > 2 else " or ".join(values)


def positive(x: float) -> bool:
    """Whether ``x`` is finite and above 0."""
    return x > 0 and math.isfinite(x)


def non_negative(x: float) -> bool:
    """Whether ``x`` is 0 or above."""
    return x >= 0


def all_positive(xs: list[int]) -> bool:
    """Whether ``xs`` is a non-empty list of positive numbers."""
    return len(xs) > 0 and all(x > 0 for x in xs)


def type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (parsed TOML) has the type of a field's annotation."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (inner,) = typing.get_args(annotation)
        return isinstance(value, list) and all(type_ok(v, inner) for v in value)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def type_name(annotation: Any) -> str:
    """A field type in the words of errors: ``an integer``, ``a list of strings``."""
    if typing.get_origin(annotation) is dict:
        return "a table"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation)
        return f"a list of {type_name(inner).removeprefix('an ').removeprefix('a ')}s"
    return names.get(annotation, str(annotation))


def table_from_dict(cls: type[Any], table: str, values: Mapping[str, Any]) -> Any:
    """The dataclass of one TOML table, every key's type and value checked.

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type, a value its check refuses or a name no installed
        entry of its registry has; the message names the key.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{table}] must be a table, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"[{table}] unknown key {key!r}; known keys: {', '.join(sorted(known))}"
            )
    for key, value in values.items():
        annotation = hints[key]
        if not type_ok(value, annotation):
            raise ConfigError(f"[{table}] {key} = {value!r} must be {type_name(annotation)}")
        check = known[key].metadata.get("check")
        if check is not None and not check(value):
            raise ConfigError(f"[{table}] {key} = {value!r} must be {why(known[key])}")
        kind = known[key].metadata.get("registry")
        if kind is not None and isinstance(value, str) and value not in (entries := registry(kind)):
            raise ConfigError(f"{entries.key} = {value!r} must be {entries.choices()}")
    return cls(**{k: float(v) if hints[k] is float else v for k, v in values.items()})
