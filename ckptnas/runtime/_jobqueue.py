"""``[cluster.jobqueue]`` guarded for the job script: its checks, and its values as keywords.

dask-jobqueue writes these values into each worker job's script as they are, so a control
character (a newline) in any value is refused (:func:`check_jobqueue`, a batch kind's check),
and the values that become arguments of the worker's command line are quoted where the shell
would read them (:func:`jobqueue_keywords`, when the cluster is made).
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from typing import Any

from ckptnas.errors import ConfigError

# dask-jobqueue (0.9, ``core.py``) writes each header value on a line of its own and joins the
# worker's command line with spaces, quoting nothing: a newline in any value adds a line to the
# script, and a shell character on the command line runs there.
# Values that are one argument each of that command line: quoted where they need it.
_ARGUMENTS = ("death_timeout", "local_directory")
_ARGUMENT_LISTS = ("worker_extra_args", "extra")
# Names the scheduler (in this process) is given too, so quoting would break them there.
_NAMES = ("interface", "protocol")
# The start of the command line: a program and its words (``srun python``), used as written.
_COMMANDS = ("python", "worker_command")
# Letters, digits, ``@%+=:,./-`` and plain ``$NAME`` or ``${NAME}`` (``local_directory =
# "$TMPDIR"`` is dask-jobqueue's own advice): the shell reads these as one word, as meant.
_PLAIN = re.compile(r"(?:[\w@%+=:,./-]|\$\w+|\$\{\w+\})*")
# What ends, chains, redirects or substitutes a command, or comments out the rest of the line.
_STRUCTURE = re.compile(r"[;&|<>`(){}\\#]")


def check_jobqueue(table: dict[str, Any]) -> None:
    """Refuse ``[cluster.jobqueue]`` values that would change the structure of the job script.

    Parameters
    ----------
    table : dict of str to Any
        The ``[cluster.jobqueue]`` table: dask-jobqueue's keywords.

    Raises
    ------
    ConfigError
        Naming the key: a control character (a newline) in any value, an argument list that is
        no list, or a shell character in a command or an interface name.
    """
    for key, value in table.items():
        _refuse_control_characters(key, value)
    for key in _ARGUMENT_LISTS:
        if key in table and not isinstance(table[key], list):
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {table[key]!r} must be a list of arguments"
            )
    for key in (*_COMMANDS, *_NAMES):
        value = table.get(key)
        found = _STRUCTURE.search(value) if isinstance(value, str) else None
        if found:
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {value!r} holds {found[0]!r}, which would change "
                "the job script's commands"
            )
    for key in _COMMANDS:
        if isinstance(table.get(key), str):
            try:
                shlex.split(table[key])
            except ValueError as exc:
                raise ConfigError(f"[cluster.jobqueue] {key} = {table[key]!r}: {exc}") from None


def jobqueue_keywords(table: dict[str, Any]) -> dict[str, Any]:
    """``[cluster.jobqueue]`` as dask-jobqueue's keywords, each command-line argument quoted.

    A value of ``local_directory``, ``death_timeout`` or an item of ``worker_extra_args`` is
    one argument of the worker's command line: one with a character the shell would read
    (a space, ``;``, ``$(``) is quoted with :func:`shlex.quote`; letters, digits, paths and
    plain ``$NAME`` references are left as they are, for the shell to expand.

    Parameters
    ----------
    table : dict of str to Any
        The ``[cluster.jobqueue]`` table, checked by :func:`check_jobqueue`.

    Returns
    -------
    dict of str to Any
        The keywords to give the dask-jobqueue cluster class.
    """
    keywords = dict(table)
    for key in _ARGUMENTS:
        if key in keywords:
            keywords[key] = _argument(keywords[key])
    for key in _ARGUMENT_LISTS:
        if isinstance(keywords.get(key), list):
            keywords[key] = [_argument(item) for item in keywords[key]]
    return keywords


def _argument(value: Any) -> Any:
    if not isinstance(value, str) or _PLAIN.fullmatch(value):
        return value
    return shlex.quote(value)


def _refuse_control_characters(key: str, value: Any) -> None:
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, list) or isinstance(value, dict):
        for item in items:
            _refuse_control_characters(key, item)
    elif isinstance(value, str):
        bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
        if bad is not None:
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {value!r} holds the control character {bad!r}: "
                "each value goes on one line of the job script"
            )
