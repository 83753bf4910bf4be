"""What warm-starting buys: epochs and seconds to a target, warm over scratch.

Every figure here is a ratio ``warm / scratch`` (lower is better, as asv assumes); the speed-up
is its inverse. The races run in ``setup_cache``, once per ``asv run``, and the ``track_``
methods read their outcome, so a ratio and its shared fraction come from the same runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ckptnas.search import plan_transfer
from ckptnas.storage import CheckpointStore

from ._common import (
    MAX_EPOCHS,
    PARENT_EPOCHS,
    POSITIONS,
    TARGET_FRACTION,
    mutate_node,
    node_at,
    parent_arch,
    quickstart,
    race,
    ratio,
    smoke,
    train_in_process,
)

#: Seeds of the twin pairs; each pair shares its seed (initialisation and batch order).
TWIN_SEEDS = smoke((1, 2), (1,))
#: Candidates of the miniature search that precedes top-K full training, and K.
SEARCH_CANDIDATES = smoke(6, 2)
TOP_K = smoke(2, 1)


def _summary(warm: list[tuple[int, float, bool]], scratch: list[tuple[int, float, bool]]) -> dict:
    return {
        "epochs": ratio([w[0] for w in warm], [s[0] for s in scratch]),
        "seconds": ratio([w[1] for w in warm], [s[1] for s in scratch]),
        "censored": sum(not r[2] for r in warm + scratch),
        "warm_epochs": [w[0] for w in warm],
        "scratch_epochs": [s[0] for s in scratch],
    }


class WarmStartAfterMutation:
    """A child one mutation away from a trained parent: warm-started twin vs scratch twin.

    The parent (``dense(64, relu)`` at every op node, skips of 1, on the quickstart data) trains
    for ``PARENT_EPOCHS`` epochs; the target is ``TARGET_FRACTION`` of its final validation R².
    Its child changes the first, the middle or the last variable node, which shares less or more
    of the network. Each twin pair trains with the same seed, the warm twin taking every layer the
    parent shares (``lcp`` plan, read from the parent's checkpoint, not frozen so it can keep
    improving) and the scratch twin none. A run that has not reached the target after
    ``MAX_EPOCHS`` epochs counts as ``MAX_EPOCHS`` (which flatters scratch, not warm).
    """

    params = POSITIONS
    param_names = ("mutated_node",)
    timeout = 900

    def setup_cache(self) -> dict[str, Any]:
        problem = quickstart()
        space, run_dir = problem.space, Path("warmstart-run").resolve()
        parent = parent_arch(space)
        trained = train_in_process(problem, run_dir, 0, parent, PARENT_EPOCHS)
        target = TARGET_FRACTION * trained.objective
        store = CheckpointStore(run_dir)
        out: dict[str, Any] = {"target": target, "parent_objective": trained.objective}
        for position in POSITIONS:
            child = mutate_node(space, parent, node_at(space, position))
            plan = plan_transfer(space, child, parent, 0)
            warm, scratch = [], []
            for seed in TWIN_SEEDS:
                donor = (store, plan, trained.checkpoint_digest)
                warm.append(race(problem, child, seed, target=target, donor=donor).cost_to(target))
                scratch.append(race(problem, child, seed, target=target).cost_to(target))
            out[position] = _summary(warm, scratch) | {
                "shared": plan.n_params / space.n_params(child)
            }
        return out

    def track_epochs_ratio(self, cache: dict[str, Any], position: str) -> float:
        """Epochs the warm child needs to reach the target over those its scratch twin needs.

        Good: well below 1 (0.5 is a 2x speed-up), lowest when the last node mutates.
        """
        return float(cache[position]["epochs"])

    track_epochs_ratio.unit = "warm/scratch"  # type: ignore[attr-defined]

    def track_seconds_ratio(self, cache: dict[str, Any], position: str) -> float:
        """Wall time to the target, warm over scratch, the warm twin paying for the transfer.

        Good: below 1 and close to the epochs ratio (the transfer adds next to nothing).
        """
        return float(cache[position]["seconds"])

    track_seconds_ratio.unit = "warm/scratch"  # type: ignore[attr-defined]

    def track_shared_fraction(self, cache: dict[str, Any], position: str) -> float:
        """Fraction of the child's parameters copied from the parent (context, not a goal).

        Higher means more is inherited; it falls as the mutation moves towards the first node.
        """
        return float(cache[position]["shared"])

    track_shared_fraction.unit = "fraction"  # type: ignore[attr-defined]


class WarmStartTopK:
    """Full training of the top-K candidates of a search, from their search checkpoints.

    A miniature search: the quickstart parent, then ``SEARCH_CANDIDATES`` mutations of it
    (mutation bias 1, as in the quickstart) trained one epoch each, warm-started with frozen
    layers as the published search did. The ``TOP_K`` best are then fully trained (up to
    ``MAX_EPOCHS``) twice: from scratch, and from their own search checkpoint (every tensor, not
    frozen). The target of each is ``TARGET_FRACTION`` of the best validation R² its scratch run
    reaches within the budget, i.e. the quality that full training from scratch delivers.
    """

    timeout = 900

    def setup_cache(self) -> dict[str, Any]:
        problem = quickstart()
        space, run_dir = problem.space, Path("topk-run").resolve()
        store = CheckpointStore(run_dir)
        parent = parent_arch(space)
        trained = {0: train_in_process(problem, run_dir, 0, parent, PARENT_EPOCHS)}
        archs = {0: parent}
        rng = np.random.default_rng(0)
        while len(archs) <= SEARCH_CANDIDATES:
            child = space.mutate(parent, rng, bias=problem.config.search.mutation_bias)
            if child in archs.values():
                continue
            cid = len(archs)
            plan = plan_transfer(space, child, parent, 0)
            archs[cid] = child
            trained[cid] = train_in_process(
                problem, run_dir, cid, child, 1, plan, trained[0].checkpoint_digest, True, cid
            )
        search = sorted((c for c in archs if c), key=lambda c: -trained[c].objective)
        warm, scratch = [], []
        for cid in search[:TOP_K]:
            arch = archs[cid]
            own = plan_transfer(space, arch, arch, cid)
            from_scratch = race(problem, arch, seed=100 + cid, max_epochs=MAX_EPOCHS)
            target = TARGET_FRACTION * max(from_scratch.metric)
            donor = (store, own, trained[cid].checkpoint_digest)
            warm.append(race(problem, arch, 100 + cid, target=target, donor=donor).cost_to(target))
            scratch.append(from_scratch.cost_to(target))
        return _summary(warm, scratch)

    def track_epochs_ratio(self, cache: dict[str, Any]) -> float:
        """Epochs of full training to the target, warm over scratch, summed over the top K.

        Good: below 1; the published figure (1.4-1.5x faster) is 0.67-0.71.
        """
        return float(cache["epochs"])

    track_epochs_ratio.unit = "warm/scratch"  # type: ignore[attr-defined]

    def track_seconds_ratio(self, cache: dict[str, Any]) -> float:
        """Wall time of full training to the target, warm over scratch, summed over the top K.

        Good: below 1 and close to the epochs ratio.
        """
        return float(cache["seconds"])

    track_seconds_ratio.unit = "warm/scratch"  # type: ignore[attr-defined]
