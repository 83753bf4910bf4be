"""Helpers shared by several test modules."""

from __future__ import annotations

from ckptnas.runtime import CandidateResult
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.space import SearchSpace


def shared_layers_by_hand(space: SearchSpace, r: tuple[int, ...], d: tuple[int, ...]) -> list[str]:
    """The layers two architectures share, worked out from their choices alone.

    A branch layer is shared while every earlier choice of its branch agrees; trunk layers are
    shared only when every branch agrees, and then while ops and skips agree in order; the head
    only when everything agrees.
    """
    names = [n.name for n in space.nodes]
    rc, dc = dict(zip(names, r, strict=True)), dict(zip(names, d, strict=True))
    shared: list[str] = []
    branches_equal = True
    for branch, _ in space.branches:
        for k in range(space.input_nodes):
            node = f"branches.{branch}.{k}"
            if rc[node] != dc[node]:
                branches_equal = False
                break
            if rc[node] != 0:
                shared.append(node)
    if not branches_equal:
        return shared
    for i in range(space.num_nodes):
        node = f"trunk.{i}"
        if rc[node] != dc[node]:
            return shared
        if rc[node] != 0:
            shared.append(node)
        if rc.get(f"{node}.skip", 0) != dc.get(f"{node}.skip", 0):
            return shared
    return [*shared, "head"]


def one_epoch_result(
    candidate_id: int, metric: float = 0.5, plan: TransferPlan = SCRATCH
) -> CandidateResult:
    """A successful one-epoch result, as a worker would report it."""
    return CandidateResult(
        candidate_id=candidate_id,
        status="ok",
        train_loss=(1.0,),
        val_loss=(1.0,),
        val_metric=(metric,),
        epoch_time=(0.1,),
        n_params=10,
        plan=plan,
    )
