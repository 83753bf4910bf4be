"""Trained candidates as files other programs load: ``ckptnas export``.

Every format holds the whole :class:`TrainedModel`, so the exported model takes raw inputs and
answers in the target's units (regression) or with class probabilities (classification), just
as :func:`load_model` does. Beside the model file goes a JSON description: the architecture
(in words, as choices, and the search space that builds it), the inputs and outputs with their
shapes, and the preprocessing the model applies, so the file can be used without ckptnas.

- ``torch-export``: a :func:`torch.export.export` program (``.pt2``), loaded with
  :func:`torch.export.load`; its module takes one ``(batch, feature)`` tensor per input, in
  input order.
- ``onnx``: an ONNX graph (``.onnx``) with one named input per ckptnas input and a dynamic batch
  dimension, for onnxruntime and other runtimes; needs the ``onnx`` and ``onnxscript`` packages.
- ``safetensors``: the module's tensors (network weights and preprocessing), for
  :func:`load_exported`; the JSON rebuilds the network.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ckptnas._version import package_version
from ckptnas.config import Task
from ckptnas.errors import CkptnasError, RunDirectoryError
from ckptnas.runtime._models import TrainedModel, load_model
from ckptnas.space import UntrustedSpaceError, space_from_dict
from ckptnas.storage import LineageRegistry, Preprocessing, RunDir, refuse_overwrite, replacing

#: The version of the JSON description; a reader refuses a newer one.
DESCRIPTION_VERSION = 1


class ExportFormat(StrEnum):
    """The file formats ``ckptnas export`` writes."""

    TORCH_EXPORT = "torch-export"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"

    @property
    def suffix(self) -> str:
        """The model file's extension."""
        return {"torch-export": ".pt2", "onnx": ".onnx", "safetensors": ".safetensors"}[self]


@dataclass(frozen=True)
class ExportedModel:
    """What :func:`export_model` wrote.

    Attributes
    ----------
    model_file : Path
    description_file : Path
        The JSON description beside it.
    description : dict
        Its content.
    """

    model_file: Path
    description_file: Path
    description: dict[str, Any]


class _PositionalInputs(nn.Module):
    """A :class:`TrainedModel` taking one tensor per input, in input order.

    Exporters trace positional tensors into named graph inputs; a mapping argument would be
    flattened into names of the exporter's choosing.
    """

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(dict(zip(self.model.input_names, inputs, strict=True)))
        return out


def export_model(
    run_dir: str | Path,
    candidate_id: int,
    format: ExportFormat | str,  # the word users type: --format
    out_dir: str | Path | None = None,
    trust_code: bool = False,
) -> ExportedModel:
    """Write a trained candidate as a model file plus a JSON description.

    Parameters
    ----------
    run_dir : str or Path
    candidate_id : int
    format : {"torch-export", "onnx", "safetensors"}
    out_dir : str or Path, optional
        Where the two files go (created if needed); ``<run_dir>/export`` by default. They are
        named ``candidate-<id>.<suffix>`` and ``candidate-<id>.json``.
    trust_code : bool
        Needed only where the run searched a space object of a user's (recorded as a pickle,
        which runs its code when loaded): only for a run directory you trust.

    Returns
    -------
    ExportedModel

    Raises
    ------
    CkptnasError
        If the format is unknown, the candidate has no trained weights, or the ONNX exporter
        is not installed.
    """
    try:
        fmt = ExportFormat(format)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise CkptnasError(f"unknown export format {format!r}; choose one of {known}") from None
    model = load_model(run_dir, candidate_id, trust_code)
    out = RunDir(run_dir).export if out_dir is None else Path(out_dir)
    model_file = refuse_overwrite(out / f"candidate-{candidate_id}{fmt.suffix}")
    description_file = refuse_overwrite(out / f"candidate-{candidate_id}.json")
    out.mkdir(parents=True, exist_ok=True)
    description = _describe(run_dir, candidate_id, model, fmt, model_file.name, trust_code)
    examples = _example_inputs(model)
    with replacing(model_file) as tmp:
        if fmt == ExportFormat.SAFETENSORS:
            tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
            save_file(tensors, tmp, {"ckptnas": json.dumps(description)})
        elif fmt == ExportFormat.TORCH_EXPORT:
            # Through a buffer: the archive writer wants a name ending in .pt2, not a temporary.
            buffer = io.BytesIO()
            torch.export.save(_exported_program(model, examples), buffer)
            tmp.write_bytes(buffer.getvalue())
        else:
            _write_onnx(model, examples, tmp, description)
    with replacing(description_file) as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return ExportedModel(model_file, description_file, description)


def _example_inputs(model: TrainedModel) -> tuple[torch.Tensor, ...]:
    """Two rows of zeros per input: shapes for the tracer (two, so batch 1 is not special)."""
    widths = [
        int(model.get_buffer(f"input{k}_shift").numel()) for k in range(len(model.input_names))
    ]
    return tuple(torch.zeros(2, width) for width in widths)


def _dynamic_batch(examples: tuple[torch.Tensor, ...]) -> tuple[tuple[dict[int, Any], ...]]:
    batch = torch.export.Dim("batch")
    # One entry for the *inputs argument, holding one spec per tensor.
    return (tuple({0: batch} for _ in examples),)


def _exported_program(
    model: TrainedModel, examples: tuple[torch.Tensor, ...]
) -> torch.export.ExportedProgram:
    return torch.export.export(
        _PositionalInputs(model).eval(), examples, dynamic_shapes=_dynamic_batch(examples)
    )


def _write_onnx(
    model: TrainedModel, examples: tuple[torch.Tensor, ...], path: Path, description: dict[str, Any]
) -> None:
    try:
        import onnx  # noqa: F401  # the exporter imports both lazily; ask before tracing
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise CkptnasError(
            f"ONNX export needs the {exc.name} package: pip install 'ckptnas[onnx]'"
        ) from None
    with _quiet_onnx_exporter():
        torch.onnx.export(
            _PositionalInputs(model).eval(),
            examples,
            path,
            input_names=list(model.input_names),
            output_names=[output["name"] for output in description["outputs"]],
            dynamic_shapes=_dynamic_batch(examples),
            external_data=False,  # one file: these networks are far below ONNX's 2 GB limit
            dynamo=True,
        )


@contextlib.contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """The exporter prints each of its stages, logs operators of packages that are not installed
    (torchvision) and warns about its own internals; none of it concerns the user.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", module=r"torch\.onnx")
            yield
    finally:
        logger.setLevel(level)


def _describe(  # noqa: PLR0913  # the export's parts, each named in its description
    run_dir: str | Path,
    candidate_id: int,
    model: TrainedModel,
    fmt: ExportFormat,
    file: str,
    trust_code: bool,
) -> dict[str, Any]:
    """The JSON description of an exported candidate."""
    with LineageRegistry(run_dir, readonly=True) as registry:
        record = registry.get(candidate_id)
        space = registry.recorded_space()
        metric = registry.get_meta("metric") or "validation metric"
    preprocessing = Preprocessing.load(run_dir)
    inputs = [
        {
            "name": name,
            "shape": ["batch", *preprocessing.inputs[name].shift.shape],
            "dtype": "float32",
            "description": "raw values, as in the data: the model applies the scaling below",
        }
        for name in model.input_names
    ]
    if model.task == Task.CLASSIFICATION:
        output = {
            "name": "probability",
            "shape": ["batch", len(model.classes)],
            "dtype": "float32",
            "description": "probability of each class, in the order of 'classes'",
            "classes": preprocessing.to_dict()["classes"],
        }
    else:
        output = {
            "name": "prediction",
            "shape": ["batch"],
            "dtype": "float32",
            "description": "the predicted target, in the data's units",
        }
    return {
        "ckptnas_export": DESCRIPTION_VERSION,
        "ckptnas_version": package_version(),
        "format": fmt.value,
        "model_file": file,
        "run": str(Path(run_dir).resolve()),
        "candidate": candidate_id,
        "objective": {"metric": metric, "validation": record.objective},
        "architecture": {
            "description": space_from_dict(space, trust_code).describe(record.arch),
            "choices": list(record.arch),
            "n_params": record.n_params,
            "space": space,
        },
        "task": model.task.value,
        "inputs": inputs,
        "outputs": [output],
        "preprocessing": preprocessing.to_dict(),
    }


def load_exported(path: str | Path, trust_code: bool = False) -> TrainedModel:
    """Read back a model that ``ckptnas export --format safetensors`` wrote.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` file, or the JSON description beside it.
    trust_code : bool
        The export of a search over a user's space carries that space as a cloudpickle, and
        unpickling it runs its code: only with ``trust_code=True`` (for a file you made).

    Returns
    -------
    TrainedModel
        In evaluation mode; it needs no run directory.

    Raises
    ------
    RunDirectoryError
        If the file is unreadable, not a safetensors export, or from a newer ckptnas.
    """
    path = Path(path)
    model_file = path.with_suffix(".safetensors") if path.suffix == ".json" else path
    try:
        with safe_open(str(model_file), framework="pt") as f:
            description = json.loads((f.metadata() or {})["ckptnas"])
        tensors = load_file(str(model_file))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise RunDirectoryError(
            f"{model_file} is not a ckptnas safetensors export: {exc}"
        ) from None
    version = description.get("ckptnas_export", 0)
    if version > DESCRIPTION_VERSION:
        raise RunDirectoryError(
            f"{model_file} was exported by a newer ckptnas (description version {version}, "
            f"this one reads up to {DESCRIPTION_VERSION})"
        )
    architecture = description["architecture"]
    try:
        space = space_from_dict(architecture["space"], trust_code)
    except UntrustedSpaceError:
        raise UntrustedSpaceError(
            f"{model_file} rebuilds its network from a pickled search space, which runs code "
            "when loaded; pass trust_code=True if you trust the file"
        ) from None
    network = space.build(architecture["choices"])
    model = TrainedModel(network, Preprocessing.from_dict(description["preprocessing"]))
    model.load_state_dict(tensors)
    return model.eval()
