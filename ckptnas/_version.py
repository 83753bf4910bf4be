"""The installed version of ckptnas, for ``--version`` and the attributes of results files."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed ckptnas version (``0+unknown`` when run from a bare source tree)."""
    try:
        return version("ckptnas")
    except PackageNotFoundError:
        return "0+unknown"
