"""The one place a run's recorded search space is rebuilt.

:meth:`~ckptnas.space.ResolvedSpace.to_dict` writes the record in one of three forms, told
apart by ``kind``:

``dense`` (no ``kind`` in runs of 0.1.0)
    The dense space's keyword arguments.
``builtin``
    A space of the registry (:data:`~ckptnas.space.SPACES`) by its name, its options and the
    shapes of the data it was made for; rebuilt through the registry, so moving a module breaks
    no run.
``pickled``
    A space object a user passed in (or one a user's factory made): a cloudpickle with the
    SHA-256 of its bytes. Unpickling runs the user's code, so it happens only in the process
    that made the space or where the caller trusts the run (``trust_code=True``), and only
    after the digest is verified.

Runs of 0.1.0 recorded the built-in conv and cell spaces as pickles too. :func:`space_from_dict`
reads such a record without running it: the pickle is opened by an unpickler that only
accepts classes of ``ckptnas.space`` and turns each into a plain namespace, from which the
data's shapes are taken; the space is then rebuilt by name like any ``builtin`` record.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ckptnas.errors import CkptnasError, RunDirectoryError, SearchSpaceError

if TYPE_CHECKING:
    from ckptnas.space._resolved import ResolvedSpace


class UntrustedSpaceError(RunDirectoryError):
    """A recorded space is a pickle of user code, and the caller did not say to trust it."""


def space_from_dict(record: dict[str, Any], trust_code: bool = False) -> ResolvedSpace:
    """The space a run recorded (:meth:`ResolvedSpace.to_dict`), rebuilt once per process.

    Parameters
    ----------
    record : dict
        A ``dense``, ``builtin`` or ``pickled`` record (see the module's notes).
    trust_code : bool
        Unpickle a user's space, which runs its code. Not needed for the dense and built-in
        spaces, nor in the process that recorded the space.

    Raises
    ------
    UntrustedSpaceError
        For a pickled user space without ``trust_code``.
    RunDirectoryError
        If a pickle does not match its digest (damaged or tampered with), or the record is
        not of a space (a key missing, a value of the wrong type).
    """
    try:
        return _from_dict(record, trust_code)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise RunDirectoryError(_malformed(exc)) from None
    except ValueError as exc:
        if isinstance(exc, CkptnasError):  # the space itself refused its options
            raise
        raise RunDirectoryError(_malformed(exc)) from None


def _malformed(exc: Exception) -> str:
    what = f"no key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return f"its recorded search space is not one ckptnas can rebuild ({what})"


def _from_dict(record: dict[str, Any], trust_code: bool) -> ResolvedSpace:
    from ckptnas.space._resolved import REBUILT

    kind = record.get("kind", "dense")
    if kind == "pickled":
        migrated = _builtin_from_release_pickle(record)
        if migrated is None:
            return _unpickled(record, trust_code)
        record = migrated
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    if key not in REBUILT:
        REBUILT[key] = _rebuilt(record)
    return REBUILT[key]


def _rebuilt(record: dict[str, Any]) -> ResolvedSpace:
    from ckptnas.space._dense import SearchSpace
    from ckptnas.space._registry import SPACES
    from ckptnas.space._resolved import ResolvedSpace

    if record.get("kind", "dense") == "dense":
        return ResolvedSpace(SearchSpace.from_dict(record))
    if record.get("kind") != "builtin":
        raise RunDirectoryError(f"unknown kind of recorded search space: {record.get('kind')!r}")
    entry = SPACES.get(record["name"])
    inputs = {k: tuple(shape) for k, shape in record["inputs"].items()}
    space: ResolvedSpace = entry.make(
        record["name"], inputs, record["output_size"], record["options"]
    )
    return space


def _unpickled(record: dict[str, Any], trust_code: bool) -> ResolvedSpace:
    from ckptnas.space._resolved import REBUILT, ResolvedSpace

    digest = str(record.get("digest", ""))
    if digest in REBUILT:
        return REBUILT[digest]
    if not trust_code:
        raise UntrustedSpaceError(
            "the run's search space is a pickle of user code, and unpickling it runs that "
            "code: pass trust_code=True (--trust-code) if you trust the run"
        )
    blob = base64.b64decode(record["pickle"])
    if hashlib.sha256(blob).hexdigest() != digest:
        raise RunDirectoryError(
            "the run's recorded search space does not match its digest: damaged, or changed "
            "since it was recorded"
        )
    import cloudpickle

    try:
        space, input_names, origin = cloudpickle.loads(blob)
    except Exception as exc:  # the user's module is missing here, or its code raised
        raise SearchSpaceError(f"the run's search space cannot be unpickled: {exc!r}") from None
    REBUILT[digest] = ResolvedSpace(space, input_names, origin)
    return REBUILT[digest]


class _SpaceClassesOnly(pickle.Unpickler):
    """Opens a pickle whose classes are all of ``ckptnas.space``, as plain namespaces."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "ckptnas.space" or module.startswith("ckptnas.space."):
            return SimpleNamespace
        raise pickle.UnpicklingError(f"{module}.{name} is not a class of ckptnas.space")


def _builtin_from_release_pickle(record: dict[str, Any]) -> dict[str, Any] | None:
    """A 0.1.0 pickle of a built-in space as a ``builtin`` record; ``None`` if it is not one."""
    from ckptnas.space._registry import SPACES
    from ckptnas.space._resolved import builtin_record

    origin = record.get("origin") or {}
    name = str(origin.get("kind", ""))
    if name not in SPACES or not hasattr(SPACES.get(name), "make"):
        return None
    try:
        space, _, _ = _SpaceClassesOnly(io.BytesIO(base64.b64decode(record["pickle"]))).load()
        inputs = {space.input_name: tuple(space.input_shape)}
        output_size = int(space.output_size)
    except (pickle.UnpicklingError, AttributeError, TypeError, ValueError, EOFError):
        return None
    return builtin_record(name, origin.get("options") or {}, inputs, output_size)
