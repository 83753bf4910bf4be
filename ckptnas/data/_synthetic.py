"""The synthetic Combo-like dataset, ``[data] kind = "synthetic_combo"``."""

from __future__ import annotations

import numpy as np

#: Feature counts of the synthetic Combo-like inputs: one cell line and two drugs.
SYNTHETIC_SIZES = {"cell": 48, "drug1": 32, "drug2": 32}


def synthetic_combo(
    n_samples: int, seed: int = 0, noise: float = 0.1
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Generate Combo-like drug-pair response data.

    Each row is a cell line and two drugs; the response depends on a nonlinear embedding of the
    cell line interacting with the same nonlinear embedding of each drug (so a sub-network shared
    by the two drugs fits it), plus a drug-drug synergy term. The target is symmetric in the two
    drugs, as a combination screen's is.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    seed : int
        Seeds the generator: the same seed gives the same data.
    noise : float
        Standard deviation of the Gaussian noise added to the standardised response.

    Returns
    -------
    inputs : dict of str to ndarray
        ``cell``, ``drug1`` and ``drug2`` feature matrices.
    target : ndarray
        The standardised response, float32.
    """
    rng = np.random.default_rng(seed)
    # The generating weights come from a fixed stream so that every seed samples the same task.
    task = np.random.default_rng(20211007)
    k = 4
    n_cell, n_drug = SYNTHETIC_SIZES["cell"], SYNTHETIC_SIZES["drug1"]
    cell_map = task.normal(size=(n_cell, k)) / np.sqrt(n_cell)
    drug_map = task.normal(size=(n_drug, k)) / np.sqrt(n_drug)
    cell_linear = task.normal(size=n_cell) / np.sqrt(n_cell)
    drug_linear = task.normal(size=n_drug) / np.sqrt(n_drug)
    inputs = {name: rng.normal(size=(n_samples, size)) for name, size in SYNTHETIC_SIZES.items()}
    u = np.tanh(1.5 * inputs["cell"] @ cell_map)
    v1 = np.tanh(1.5 * inputs["drug1"] @ drug_map)
    v2 = np.tanh(1.5 * inputs["drug2"] @ drug_map)
    y = (
        inputs["cell"] @ cell_linear
        + (inputs["drug1"] + inputs["drug2"]) @ drug_linear
        + (u * (v1 + v2)).sum(1)
        + 0.5 * (v1 * v2).sum(1)
    )
    y = (y - y.mean()) / y.std()
    y = y + noise * rng.normal(size=n_samples)
    return {k: v.astype(np.float32) for k, v in inputs.items()}, y.astype(np.float32)
