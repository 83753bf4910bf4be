"""What a run says of its held-out test rows: whether it has them, and its models' scores there.

Every other figure of a run is measured on the validation rows that chose its models, so it is
optimistic; the test rows are the unbiased answer. The summary, the report and the HTML page
show these lines, labelled as held-out, from the same function.
"""

from __future__ import annotations

import math

from ckptnas.config import Config
from ckptnas.storage import CandidateStatus, RunDir, TopKRegistry


def held_out_facts(run: RunDir, config: Config | None, metric: str) -> list[tuple[str, str]]:
    """The run's held-out test split and its fully trained models' test scores, as rows.

    Parameters
    ----------
    run : RunDir
    config : Config or None
        The run's recorded configuration (``None``: none recorded).
    metric : str
        The metric's name (``accuracy``, ``r2``).

    Returns
    -------
    list of (str, str)
        (label, value) rows, every label starting with "held-out test".
    """
    data = None if config is None else config.data
    if data is None or (data.test_fraction == 0 and not data.split_variable):
        return [
            (
                "held-out test rows",
                "none: this run holds no rows out (recorded before test splits, or "
                "[data] test_fraction = 0), so every figure here is on the validation rows "
                "that chose the models",
            )
        ]
    rows = (
        f"the rows {data.split_variable!r} marks test"
        if data.split_variable
        else f"{data.test_fraction:.0%} of the rows"
    )
    facts = [("held-out test rows", f"{rows}, which nothing of the search sees")]
    scores = _full_training_scores(run)
    facts.append(
        (
            f"held-out test {metric} of the fully trained models",
            scores
            or "not measured yet: train-topk scores the best candidates on them, "
            "evaluate any candidate",
        )
    )
    return facts


def _full_training_scores(run: RunDir) -> str:
    """Each finished full-training run's test metric, by candidate (empty: none yet)."""
    if not run.topk_db.is_file():
        return ""
    with TopKRegistry(run, readonly=True) as registry:
        done = registry.runs(CandidateStatus.OK)
    by_candidate: dict[int, list[str]] = {}
    for r in sorted(done, key=lambda r: (-_finite(r.search_objective), r.candidate, r.init)):
        score = "not scored" if math.isnan(r.test_metric) else f"{r.test_metric:.4f}"
        by_candidate.setdefault(r.candidate, []).append(f"{r.init} {score}")
    return "; ".join(f"candidate {c}: {', '.join(s)}" for c, s in by_candidate.items())


def _finite(x: float) -> float:
    return -math.inf if math.isnan(x) else x
