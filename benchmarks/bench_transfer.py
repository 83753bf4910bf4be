"""The transfer step on the quickstart model: plan, read, copy, and its cost against an epoch.

The donor is the quickstart parent of :mod:`benchmarks.bench_warmstart` (``dense(64, relu)``
everywhere, about 80k parameters), trained one epoch and recorded in a real registry
(``add_candidate`` + ``record``) in ``setup_cache``. The recipient changes the first, the middle
or the last variable node, which decides how many tensors move. The whole step is the run's own
path: the :class:`~ckptnas.search.Planner` of the ``lcp`` policy (donor look-up in its
:class:`~ckptnas.search.DonorIndex`, then the plan), the donor's checkpoint digest from the
registry, the verified partial read and the copy.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from ckptnas.runtime import evaluate, train_epoch
from ckptnas.search import SCRATCH, Planner, apply_plan, plan_transfer
from ckptnas.storage import CheckpointStore, LineageRegistry

from ._common import (
    POSITIONS,
    mutate_node,
    node_at,
    parent_arch,
    quickstart,
    smoke,
    train_in_process,
)

RUN_DIR = "transfer-run"
#: How many transfer steps and epochs the percentage is the median of.
STEPS, EPOCHS = smoke((50, 3), (5, 1))


class TransferStep:
    """Planning, reading and applying a transfer from a trained donor."""

    params = POSITIONS
    param_names = ("mutated_node",)
    timeout = 300

    def setup_cache(self) -> None:
        problem = quickstart()
        run_dir = Path(RUN_DIR).resolve()
        parent = parent_arch(problem.space)
        with LineageRegistry(run_dir) as registry:
            donor = registry.add_candidate(parent, SCRATCH, problem.space.n_params(parent))
            registry.record(train_in_process(problem, run_dir, donor, parent, 1))

    def setup(self, position: str) -> None:
        self.problem = quickstart()
        self.space = self.problem.space
        self.registry = LineageRegistry(Path(RUN_DIR).resolve())
        self.store = CheckpointStore(Path(RUN_DIR).resolve())
        (self.donor,) = self.registry.candidates("ok")
        self.planner = Planner("lcp", self.space)
        self.planner.rebuild([self.donor])
        self.child = mutate_node(self.space, self.donor.arch, node_at(self.space, position))
        self.plan = plan_transfer(self.space, self.child, self.donor.arch, self.donor.id)
        self.tensors = self.store.load(self.donor.id, self.plan.tensors)
        self.model = self.space.build(self.child)
        self.batch_size = self.problem.config.training.batch_size

    def teardown(self, position: str) -> None:
        self.registry.close()

    def transfer(self, model: torch.nn.Module) -> float:
        """The whole step as the runner and a worker run it; returns its duration in seconds."""
        tic = time.perf_counter()
        plan = self.planner.plan(self.child)
        assert plan.donor is not None
        digest = self.registry.get(plan.donor).checkpoint_digest
        tensors = self.store.load(plan.donor, plan.tensors, digest)
        apply_plan(model, tensors, plan, freeze=False)
        return time.perf_counter() - tic

    def time_plan_transfer(self, position: str) -> None:
        """``plan_transfer``: identities of both networks and the layers they share.

        Good: tens of microseconds; a small fraction of the whole step.
        """
        plan_transfer(self.space, self.child, self.donor.arch, self.donor.id)

    def time_load_donor_tensors(self, position: str) -> None:
        """Partial, hash-verified read of the planned tensors from the donor's checkpoint.

        Good: well under a millisecond for the quickstart model's few hundred kB.
        """
        self.store.load(self.donor.id, self.plan.tensors, self.donor.checkpoint_digest)

    def time_apply_plan(self, position: str) -> None:
        """``apply_plan``: copying the read tensors into the model.

        Good: tens of microseconds.
        """
        apply_plan(self.model, self.tensors, self.plan, freeze=False)

    def time_transfer_step(self, position: str) -> None:
        """The whole step: ``Planner.plan`` (donor look-up and plan), verified partial load, apply.

        Good: under 1% of one training epoch of the quickstart model (see the track below).
        """
        self.transfer(self.model)

    def track_transfer_percent_of_epoch(self, position: str) -> float:
        """The transfer step (median of 50) as a percentage of one epoch (median of 3).

        One epoch is the quickstart's (batch 64, 4,800 training rows, validation included) on
        the recipient, one thread. Good: under 1 (the goal).
        """
        models = [self.space.build(self.child) for _ in range(STEPS)]
        step = statistics.median(self.transfer(model) for model in models)
        return 100 * step / self._epoch_seconds()

    track_transfer_percent_of_epoch.unit = "%"  # type: ignore[attr-defined]

    def _epoch_seconds(self) -> float:
        model = self.space.build(self.child)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        times = []
        for _ in range(EPOCHS):
            tic = time.perf_counter()
            train_epoch(model, self.problem.data, optimizer, self.batch_size, generator)
            evaluate(model, self.problem.data)
            times.append(time.perf_counter() - tic)
        return statistics.median(times)
