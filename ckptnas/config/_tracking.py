"""``[tracking]``: following a run in MLflow and TensorBoard, besides ``report.html``.

The keys only say where; :mod:`ckptnas.tracking` makes the listeners that write there, and
refuses a key whose library is not installed when the run starts (reading the configuration of
a finished run never needs them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ckptnas.config._fields import option


@dataclass(frozen=True)
class TrackingConfig:
    """``[tracking]``: where a run is followed besides its HTML report."""

    mlflow_uri: str = option(
        "",
        why="an MLflow tracking URI (http://host:5000, sqlite:///mlflow.db, file:./mlruns) or a "
        "directory; empty: no MLflow",
    )
    mlflow_experiment: str = option("", why="an MLflow experiment name; empty: [experiment] name")
    tensorboard_dir: str = option("", why="a directory path; empty: no TensorBoard")

    def resolved(self, folder: Path) -> TrackingConfig:
        """The table with a relative directory or local store taken from ``folder``.

        ``sqlite:///`` with three slashes names a path relative to the working directory, as
        SQLAlchemy reads it; four make it absolute. An ``http(s)`` URI is left as it is.
        """
        values = {}
        if self.tensorboard_dir and not Path(self.tensorboard_dir).is_absolute():
            values["tensorboard_dir"] = str((folder / self.tensorboard_dir).resolve())
        uri = _local_uri(self.mlflow_uri, folder)
        if uri != self.mlflow_uri:
            values["mlflow_uri"] = uri
        return dataclasses.replace(self, **values) if values else self


def _local_uri(uri: str, folder: Path) -> str:
    """A tracking URI whose relative local path is taken from ``folder``."""
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        relative = bool(path) and not path.startswith(("/", ":memory:"))
        return f"sqlite:///{(folder / path).resolve()}" if relative else uri
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        path = uri.removeprefix("file:")
        # file:/path, file:///path and file://host/path are absolute already.
        return uri if path.startswith("/") else (folder / path).resolve().as_uri()
    if not uri or len(scheme) > 1:  # http, https, databricks, ...; one letter is a drive
        return uri
    return uri if Path(uri).is_absolute() else str((folder / uri).resolve())
