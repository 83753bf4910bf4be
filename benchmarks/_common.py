"""What the benchmarks share: the quickstart problem, twin architectures and races to a target.

Nothing here is a benchmark (asv collects only names starting with ``time_``, ``peakmem_``,
``track_`` ...). Every helper goes through ckptnas's own code path: the quickstart
configuration and dataset, :class:`~ckptnas.space.SearchSpace`, the training loop of
:mod:`ckptnas.runtime`, the checkpoint store and the transfer functions.

Torch is limited to one thread, as on a Dask worker (which starts with ``OMP_NUM_THREADS=1``),
so in-process and on-worker figures are comparable and two benchmarks on a two-core machine do
not fight over cores.

``CKPTNAS_BENCH_SMOKE=1`` in the environment shrinks every benchmark's work (rounds, candidates,
epochs, sizes; see :func:`smoke`) so that the whole suite runs in a few minutes: a check that
every benchmark still runs, whose figures mean nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ckptnas.config import Config, load_config
from ckptnas.runtime import (
    CandidateResult,
    CandidateSpec,
    DeviceData,
    TrainingSettings,
    data_key,
    evaluate,
    get_data,
    seed_weights,
    train_candidate,
    train_epoch,
)
from ckptnas.search import SCRATCH, TransferPlan, apply_plan
from ckptnas.space import Architecture, Op, SearchSpace
from ckptnas.storage import CheckpointStore

T = TypeVar("T")

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"

#: Whether ``CKPTNAS_BENCH_SMOKE`` asks for the smoke run (set and neither empty nor ``0``).
SMOKE = os.environ.get("CKPTNAS_BENCH_SMOKE", "") not in ("", "0")


def smoke(full: T, small: T) -> T:
    """``full`` in a real run, ``small`` in a smoke run (``CKPTNAS_BENCH_SMOKE=1``)."""
    return small if SMOKE else full


#: Where a single mutation is made: the last, the middle and the first variable node.
POSITIONS = ("last", "middle", "first")

#: The target of a race: this fraction of a reference validation metric.
TARGET_FRACTION = 0.95
#: Epochs the parent of the warm-start benchmarks trains before children inherit from it.
PARENT_EPOCHS = smoke(8, 2)
#: The most epochs a race runs; a run that has not reached the target by then is censored.
MAX_EPOCHS = smoke(16, 3)


@dataclass(frozen=True)
class Problem:
    """The quickstart search problem, set up in this process."""

    config: Config
    space: SearchSpace
    key: str
    data: DeviceData

    @property
    def settings(self) -> TrainingSettings:
        """The quickstart's training settings (one training thread, on the CPU)."""
        t = self.config.training
        return TrainingSettings(
            t.epochs, t.batch_size, t.learning_rate, self.config.transfer.freeze, "cpu"
        )


def quickstart(**training: object) -> Problem:
    """The quickstart configuration (``experiments/quickstart.toml``), its data and space.

    Parameters
    ----------
    **training
        Keys of the ``[training]`` table to override, e.g. ``epochs=1``.
    """
    torch.set_num_threads(1)
    config = load_config(QUICKSTART) if QUICKSTART.is_file() else Config()
    if training:
        config = config.replace("training", **training)
    key = data_key(config.data, config.experiment.seed)
    data = get_data(key)
    space = SearchSpace.from_config(config.space, data.input_sizes, data.output_size)
    return Problem(config, space, key, DeviceData.of(key, torch.device("cpu")))


def parent_arch(space: SearchSpace) -> Architecture:
    """A fixed, mid-sized parent: every op node a dense layer of the middle width, skips of 1.

    On the quickstart space that is ``dense(64, relu)`` everywhere, about 80k parameters.
    """
    units = space.units[len(space.units) // 2]
    dense = space.ops.index(Op("dense", units, space.activations[0]))
    return space.validate(
        tuple(dense if node.role == "op" else min(1, node.n_choices - 1) for node in space.nodes)
    )


def node_at(space: SearchSpace, position: str) -> int:
    """Index of the variable node at ``first``, ``middle`` or ``last``."""
    return {"first": 0, "middle": len(space.nodes) // 2, "last": len(space.nodes) - 1}[position]


def mutate_node(space: SearchSpace, arch: Architecture, index: int) -> Architecture:
    """Change one node's choice, deterministically.

    An op node keeps its activation and moves to the next narrower width (the next wider one at
    the narrowest), so the child always has a layer there; a skip node moves to its next choice.
    """
    node, value = space.nodes[index], arch[index]
    if node.role == "op" and space.ops[value].kind == "dense":
        op = space.ops[value]
        k = space.units.index(op.units)
        units = space.units[k - 1] if k > 0 else space.units[(k + 1) % len(space.units)]
        new = space.ops.index(Op("dense", units, op.activation))
    else:
        new = (value + 1) % node.n_choices
    if new == value:
        raise ValueError(f"node {node.name} has no other choice")
    return (*arch[:index], new, *arch[index + 1 :])


def train_in_process(
    problem: Problem,
    run_dir: Path,
    candidate_id: int,
    arch: Architecture,
    epochs: int,
    plan: TransferPlan = SCRATCH,
    donor_digest: str | None = None,
    freeze: bool = False,
    seed: int = 0,
) -> CandidateResult:
    """Train and checkpoint one candidate with :func:`ckptnas.training.train_candidate`."""
    settings = replace(problem.settings, epochs=epochs, freeze=freeze)
    spec = CandidateSpec(
        candidate_id=candidate_id,
        arch=arch,
        space=problem.space.to_dict(),
        run_dir=str(run_dir),
        data_key=problem.key,
        settings=settings,
        seed=seed,
        plan=plan,
        donor_digest=donor_digest,
    )
    result = train_candidate(spec)
    if result.status != "ok":
        raise RuntimeError(f"candidate {candidate_id} did not train: {result.error}")
    return result


@dataclass(frozen=True)
class Race:
    """One training run towards a target: the metric and the elapsed time after each epoch.

    ``seconds[e]`` counts from before the model is built (so a warm run pays for reading and
    copying the donor's tensors) to the end of epoch ``e + 1``'s validation.
    """

    metric: tuple[float, ...]
    seconds: tuple[float, ...]

    def epochs_to(self, target: float) -> int | None:
        """The first epoch (1-based) whose validation metric reaches ``target``."""
        return next((e + 1 for e, m in enumerate(self.metric) if m >= target), None)

    def cost_to(self, target: float) -> tuple[int, float, bool]:
        """Epochs and seconds to the target, and whether it was reached (else: the whole run)."""
        epochs = self.epochs_to(target)
        if epochs is None:
            return len(self.metric), self.seconds[-1], False
        return epochs, self.seconds[epochs - 1], True


def race(
    problem: Problem,
    arch: Architecture,
    seed: int,
    max_epochs: int = MAX_EPOCHS,
    target: float | None = None,
    donor: tuple[CheckpointStore, TransferPlan, str | None] | None = None,
    freeze: bool = False,
) -> Race:
    """Train ``arch`` with ckptnas's loop until it reaches ``target`` or ``max_epochs``.

    Parameters
    ----------
    problem : Problem
    arch : tuple of int
    seed : int
        Seeds the initialisation and the batch order: twins share it.
    max_epochs : int
    target : float, optional
        Stop at the first epoch whose validation metric reaches it; run every epoch if None.
    donor : (CheckpointStore, TransferPlan, digest), optional
        Warm-start: read the plan's tensors from the store (verified) and copy them in.
    freeze : bool
        Freeze the copied tensors.
    """
    tic = time.perf_counter()
    seed_weights(seed)
    model = problem.space.build(arch)
    if donor is not None:
        store, plan, digest = donor
        assert plan.donor is not None
        apply_plan(model, store.load(plan.donor, plan.tensors, digest), plan, freeze)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=problem.config.training.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    metric: list[float] = []
    seconds: list[float] = []
    for _ in range(max_epochs):
        train_epoch(model, problem.data, optimizer, problem.config.training.batch_size, generator)
        metric.append(evaluate(model, problem.data)[1])
        seconds.append(time.perf_counter() - tic)
        if target is not None and metric[-1] >= target:
            break
    return Race(tuple(metric), tuple(seconds))


def ratio(warm: list[float], scratch: list[float]) -> float:
    """Total warm cost over total scratch cost (lower is better)."""
    return float(np.sum(warm) / np.sum(scratch))
