"""A stop signal that cuts a Dask call short as it begins leaves no traceback behind."""

from __future__ import annotations

import logging
import sys

import distributed.utils

from ckptnas.runtime._cluster import _QuietAboutAnEarlyCancel


def logged(exc_from: str, source: str) -> logging.LogRecord:
    """The record tornado logs for an exception raised by code compiled as ``source``'s."""
    namespace: dict[str, object] = {}
    exec(compile(f"def {exc_from}():\n    return unassigned\n", source, "exec"), namespace)
    try:
        namespace[exc_from]()  # type: ignore[operator]
    except NameError:
        info = sys.exc_info()
    return logging.LogRecord(
        "tornado.application", logging.ERROR, source, 1, "Exception in callback", None, info
    )


def test_only_dasks_early_cancel_is_held_back() -> None:
    quiet = _QuietAboutAnEarlyCancel()
    assert not quiet.filter(logged("cancel", distributed.utils.__file__))
    assert quiet.filter(logged("cancel", "/elsewhere/mine.py"))
    assert quiet.filter(logged("wait", distributed.utils.__file__))
