"""A finished candidate's quality on a split of the run's data, or on a labelled file.

The search sees the training and validation rows only; the held-out test rows
(``[data] test_fraction``) answer how good a model is that was chosen on the validation rows.
:func:`score_candidate` is that answer for any candidate, with its search weights or those of
its full training, and for any labelled netCDF file with the run's variables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from ckptnas.config import Config, Task
from ckptnas.data import load_data, load_netcdf
from ckptnas.errors import DataError
from ckptnas.runtime._fit import metric_of
from ckptnas.runtime._models import TrainedModel, load_model
from ckptnas.storage import Init, RunDir, recorded_config

#: Rows scored at once (bounds the activations' memory on large sets).
_CHUNK = 8192


@dataclass(frozen=True)
class Score:
    """A candidate's metric on some rows.

    Attributes
    ----------
    candidate : int
    weights : str
        ``search`` (its checkpoint in the search) or the init of its full training.
    rows : str
        ``val``, ``test`` or the labelled file scored.
    metric : {"accuracy", "r2"}
    value : float
    n_rows : int
    """

    candidate: int
    weights: str
    rows: str
    metric: str
    value: float
    n_rows: int

    def line(self) -> str:
        """The score as one line, held-out test rows said as such."""
        named = {"test": "held-out test rows", "val": "validation rows"}
        rows = named.get(self.rows, f"rows of {self.rows}")
        return (
            f"candidate {self.candidate} ({self.weights} weights): {self.metric} = "
            f"{self.value:.4f} on {self.n_rows} {rows}"
        )


def score_candidate(  # noqa: PLR0913  # which model, then which rows, each a keyword
    run_dir: str | Path,
    candidate_id: int,
    *,
    split: Literal["val", "test"] = "test",
    data: str | Path | None = None,
    init: Init | None = None,
    trust_code: bool = False,
) -> Score:
    """Score a candidate on a split of the run's data, or on a labelled netCDF file.

    Parameters
    ----------
    run_dir : str or Path
    candidate_id : int
    split : {"test", "val"}
        The run's held-out test rows, or its validation rows (those the search chose on).
    data : str or Path, optional
        A netCDF file with the run's input variables and its target variable
        (``[data] target``), scored instead of a split.
    init : {"scratch", "checkpoint"}, optional
        Score the weights of the candidate's full training with this init, not its search
        checkpoint.
    trust_code : bool
        As for :func:`~ckptnas.runtime.load_model`.

    Returns
    -------
    Score

    Raises
    ------
    DataError
        If the run holds no test rows (recorded before test splits, or ``test_fraction = 0``),
        or the file lacks a variable.
    """
    model = load_model(run_dir, candidate_id, trust_code, init=init)
    config = recorded_config(RunDir(run_dir))
    metric = "accuracy" if model.task == Task.CLASSIFICATION else "r2"
    weights = "search" if init is None else str(init)
    if data is not None:
        value, n = _score_file(model, config, data)
        return Score(candidate_id, weights, str(data), metric, value, n)
    value, n = _score_split(model, config, split, run_dir)
    return Score(candidate_id, weights, split, metric, value, n)


@torch.no_grad()
def _score_split(
    model: TrainedModel, config: Config, split: Literal["val", "test"], run_dir: str | Path
) -> tuple[float, int]:
    """The network on the run's own scaled rows of ``split``, as training scored them."""
    dataset = load_data(config.data, seed=config.experiment.seed)
    inputs, target = dataset.split(split)
    if not len(target):
        raise DataError(
            f"run {str(run_dir)!r} holds no test rows (recorded before test splits, or "
            "[data] test_fraction = 0): score a labelled file instead (evaluate RUN_DIR DATA.nc)"
        )
    outputs = torch.cat(
        [
            model.network({k: torch.as_tensor(v[i : i + _CHUNK]) for k, v in inputs.items()})
            for i in range(0, len(target), _CHUNK)
        ]
    ).float()
    return metric_of(model.task, outputs, torch.as_tensor(target)), len(target)


@torch.no_grad()
def _score_file(model: TrainedModel, config: Config, data: str | Path) -> tuple[float, int]:
    """The model on a file's raw inputs, against its raw target (labels or values)."""
    target_name = config.data.target
    if not target_name:
        raise DataError(
            f"the run's [data] (kind = {config.data.kind!r}) names no target variable to read "
            f"from {str(data)!r}: only runs on netCDF data score a labelled file"
        )
    # The file is read as the run read its own: the same variables, checks and sample dimension.
    inputs, truth = load_netcdf(replace(config.data, path=str(data), inputs=model.input_names))
    outputs = model(inputs)
    if model.task == Task.CLASSIFICATION:
        index = {label: i for i, label in enumerate(model.classes)}
        # A label the run never saw is a class the model cannot answer: it counts as wrong.
        y = torch.as_tensor([index.get(label, -1) for label in truth.tolist()])
        return metric_of(Task.CLASSIFICATION, outputs, y), len(truth)
    y = torch.as_tensor(truth, dtype=torch.float32)
    return metric_of(Task.REGRESSION, outputs, y), len(truth)
