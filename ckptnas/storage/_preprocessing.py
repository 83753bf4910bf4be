"""What turns a user's raw data into what the networks saw, and their outputs back.

A run fits, on its training rows, one affine scaling per input feature and (for regression)
one for the target, and encodes class labels as indices. :class:`Preprocessing` records those,
in ``preprocessing.safetensors`` in the run directory (the arrays as tensors, the labels and
input names in its JSON header: no pickle), so that a trained candidate can be used on raw data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ckptnas.errors import RunDirectoryError
from ckptnas.storage._atomic import replacing
from ckptnas.storage._rundir import RunDir


@dataclass(frozen=True)
class Scaling:
    """An affine map fitted on training rows: ``x -> (x - shift) / scale``, per feature."""

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaling:
        """Zero mean and unit variance over ``x``'s rows (a constant feature keeps scale 1)."""
        x = np.asarray(x, dtype=np.float64)
        std = x.std(0)
        return cls(x.mean(0), np.where(std > 0, std, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Scaled values, as float32 (what the networks take)."""
        scaled: np.ndarray = ((np.asarray(x, dtype=np.float64) - self.shift) / self.scale).astype(
            np.float32
        )
        return scaled

    def invert(self, y: np.ndarray) -> np.ndarray:
        """Back to the original units."""
        out: np.ndarray = np.asarray(y, dtype=np.float64) * self.scale + self.shift
        return out


@dataclass(frozen=True)
class Preprocessing:
    """A run's fitted input scalings and target encoding.

    Attributes
    ----------
    task : {"regression", "classification"}
    inputs : dict of str to Scaling
        One per input, in input order.
    target : Scaling or None
        Regression: how the target was standardised for training.
    classes : tuple
        Classification: the label of each class index (numbers or strings, as in the data).
    """

    task: str
    inputs: dict[str, Scaling]
    target: Scaling | None = None
    classes: tuple[Any, ...] = field(default=())

    FILE = RunDir.PREPROCESSING

    def save(self, run_dir: str | Path | RunDir) -> None:
        """Write ``preprocessing.safetensors`` into a run directory (atomically)."""
        arrays = {}
        for name, scaling in self.inputs.items():
            arrays[f"input.{name}.shift"] = scaling.shift
            arrays[f"input.{name}.scale"] = scaling.scale
        if self.target is not None:
            arrays["target.shift"] = np.atleast_1d(self.target.shift)
            arrays["target.scale"] = np.atleast_1d(self.target.scale)
        header = {"task": self.task, "inputs": list(self.inputs), "classes": self.classes}
        metadata = {"ckptnas": json.dumps(header, default=_json_label)}
        with replacing(RunDir(run_dir).preprocessing) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, tmp, metadata)

    @classmethod
    def load(cls, run_dir: str | Path | RunDir) -> Preprocessing:
        """Read a run's preprocessing.

        Raises
        ------
        RunDirectoryError
            If the run has none (it was made by ckptnas 0.1) or the file is unreadable.
        """
        path = RunDir(run_dir).preprocessing
        if not path.is_file():
            raise RunDirectoryError(
                f"{path} is missing: the run records no input scaling (runs of ckptnas 0.1 do "
                "not), so its models cannot take raw data"
            )
        try:
            with safe_open(str(path), framework="np") as f:
                header = json.loads(f.metadata()["ckptnas"])
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  # not a dict
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
            raise RunDirectoryError(f"{path} is unreadable: {exc}") from None
        inputs = {
            n: Scaling(arrays[f"input.{n}.shift"], arrays[f"input.{n}.scale"])
            for n in header["inputs"]
        }
        target = None
        if "target.shift" in arrays:
            target = Scaling(arrays["target.shift"][0], arrays["target.scale"][0])
        return cls(header["task"], inputs, target, tuple(header["classes"]))

    def to_dict(self) -> dict[str, Any]:
        """The preprocessing as JSON-ready values: lists of floats, labels as text or numbers.

        What an exported model's JSON description carries; :meth:`from_dict` reads it back.
        """

        def scaling(s: Scaling) -> dict[str, Any]:
            return {
                "shift": np.atleast_1d(s.shift).tolist(),
                "scale": np.atleast_1d(s.scale).tolist(),
            }

        return {
            "task": self.task,
            "inputs": {name: scaling(s) for name, s in self.inputs.items()},
            "target": None if self.target is None else scaling(self.target),
            "classes": [_json_label(c) for c in self.classes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Read back what :meth:`to_dict` gave."""

        def scaling(s: dict[str, Any]) -> Scaling:
            return Scaling(np.asarray(s["shift"]), np.asarray(s["scale"]))

        target = d.get("target")
        return cls(
            d["task"],
            {name: scaling(s) for name, s in d["inputs"].items()},
            None
            if target is None
            else Scaling(np.asarray(target["shift"][0]), np.asarray(target["scale"][0])),
            tuple(d.get("classes", ())),
        )


def _json_label(value: Any) -> Any:
    """Class labels as JSON: numpy scalars become Python numbers, anything else its text."""
    return value.item() if isinstance(value, np.generic) else str(value)
