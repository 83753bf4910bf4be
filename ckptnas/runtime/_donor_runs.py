"""Donors from earlier runs (``[transfer] donor_runs``): found, checked and pinned at start-up.

Each run listed is opened read-only: its registry as an immutable SQLite file, so that not
even SQLite's ``-shm`` index appears beside it, and its checkpoints only ever read, with their
recorded digests verified by the worker. A run is refused in one line before any candidate is
planned when it is missing, is no finished ckptnas search, holds no trained candidate whose
layers match this run's space, or, on resume, is no longer what it was when this run started:
a run's identity is the digest of its registry's ``created`` stamp and of every candidate's
id, status and checkpoint digest, recorded in this run's registry (meta ``donor_runs``).

With ``[transfer] seed_population``, the donor runs' best candidates also seed the strategy's
first population (:func:`seed_strategy`): it starts from them rather than at random.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ckptnas.config import Config
from ckptnas.errors import CkptnasError, ConfigError
from ckptnas.search import Strategy
from ckptnas.space import Architecture, ResolvedSpace, space_from_dict
from ckptnas.storage import (
    CandidateRecord,
    CandidateStatus,
    LineageRegistry,
    RunDir,
    RunKind,
    SearchStage,
)

#: The registry meta key holding, for each donor run, its identity when this run started.
META_KEY = "donor_runs"


@dataclass(frozen=True)
class ForeignDonor:
    """A trained candidate of an earlier run, as a donor of this one."""

    #: The absolute path of its run directory.
    run: str
    id: int
    arch: Architecture
    objective: float
    #: The digest of its checkpoint, verified when it is read.
    digest: str


@dataclass(frozen=True)
class DonorRun:
    """An earlier run whose candidates are donors: its path, identity and usable candidates."""

    path: str
    identity: str
    donors: tuple[ForeignDonor, ...]


def open_donor_runs(paths: list[str], space: ResolvedSpace, run_dir: RunDir) -> list[DonorRun]:
    """The donor runs ``paths`` name, each checked and read once.

    Raises
    ------
    ConfigError
        In one line, for the first run that cannot serve: missing, not a finished ckptnas
        search, this run itself, or with no trained candidate whose layers match ``space``.
    """
    own = run_dir.resolved().root
    runs = []
    for text in paths:
        path = Path(text).absolute()
        where = f"[transfer] donor_runs: {text}"
        if not path.exists():
            raise ConfigError(f"{where} does not exist")
        if path.resolve() == Path(own).resolve():
            raise ConfigError(f"{where} is this run's own directory")
        if RunDir(path).kind() != RunKind.SEARCH:
            raise ConfigError(f"{where} is not a ckptnas search run")
        try:
            with LineageRegistry(path, readonly=True, untouched=True) as registry:
                runs.append(_read(registry, str(path), space, where))
        except CkptnasError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where} cannot be read: {exc}") from None
    return runs


def _read(registry: LineageRegistry, path: str, space: ResolvedSpace, where: str) -> DonorRun:
    """One donor run's identity and the candidates of it that may serve as donors here."""
    records = registry.candidates()
    if any(r.status == CandidateStatus.PENDING for r in records):
        raise ConfigError(f"{where} is not finished: it has candidates in flight")
    recorded = registry.recorded_space()
    same = recorded == {k: v for k, v in space.to_dict().items() if k != "node_names"}
    other = None if same else space_from_dict(recorded)
    donors = tuple(
        ForeignDonor(path, r.id, r.arch, r.objective, r.checkpoint_digest)
        for r in records
        if _usable(r) and r.checkpoint_digest and (same or _matches(space, other, r.arch))
    )
    if not donors:
        raise ConfigError(f"{where} holds no trained candidate whose layers match this space")
    return DonorRun(path, identity(registry), donors)


def _usable(record: CandidateRecord) -> bool:
    return (
        record.status == CandidateStatus.OK
        and record.donor_usable
        and math.isfinite(record.objective)
    )


def _matches(space: ResolvedSpace, other: ResolvedSpace | None, arch: Architecture) -> bool:
    """Whether ``arch`` has the same layers, by name and identity, in both spaces."""
    if other is None:
        return True
    try:
        return space.identities(arch) == other.identities(arch)
    except (ValueError, IndexError, KeyError, TypeError):  # no architecture of this space
        return False


def identity(registry: LineageRegistry) -> str:
    """A run's identity: its creation stamp and every candidate's id, status and digest."""
    rows = [(r.id, str(r.status), r.checkpoint_digest) for r in registry.candidates()]
    text = json.dumps([registry.get_meta("created"), rows])
    return hashlib.sha256(text.encode()).hexdigest()


def pin_donor_runs(registry: LineageRegistry, runs: list[DonorRun]) -> None:
    """Record the donor runs' identities, or refuse a resume whose donor runs changed.

    Raises
    ------
    ConfigError
        In one line, for a donor run that moved or changed since this run started.
    """
    now = {run.path: run.identity for run in runs}
    text = registry.get_meta(META_KEY)
    before: dict[str, str] = json.loads(text) if text else {}
    for path, pinned in before.items():
        if path not in now:
            raise ConfigError(
                f"[transfer] donor_runs: {path}, a donor run when this run started, is "
                "no longer listed"
            )
        if now[path] != pinned:
            raise ConfigError(
                f"[transfer] donor_runs: {path} changed since this run started (its registry "
                "is not the one its donors were read from)"
            )
    if now != before:
        registry.set_meta(META_KEY, json.dumps(now))


def best_architectures(runs: list[DonorRun], n: int) -> list[Architecture]:
    """The ``n`` best distinct architectures of the donor runs' candidates, best first.

    Ranked by their recorded objective (the final validation metric) across all the runs; a
    tie goes to the run listed first, then to the earlier candidate.
    """
    donors = sorted((d for run in runs for d in run.donors), key=lambda d: -d.objective)
    return list(dict.fromkeys(d.arch for d in donors))[:n]


def seed_strategy(
    strategy: Strategy, runs: list[DonorRun], config: Config, registry: LineageRegistry
) -> None:
    """Seed the strategy's first ``[search] population_size`` proposals from the donor runs.

    Nothing is seeded without donor runs or with ``[transfer] seed_population = false``. A
    resumed run seeds only what its first population still lacks: its registry records the
    seeded candidates it registered before it stopped (stage ``seeded``), and the strategy
    skips the architectures it has proposed.
    """
    if not runs or not config.transfer.seed_population:
        return
    size = config.search.population_size
    done = sum(r.stage == SearchStage.SEEDED for r in registry.candidates())
    strategy.seed_population(best_architectures(runs, size), size - done)
