"""The experiment configuration: TOML tables mapped onto frozen dataclasses, checked up front.

Every key has a default, so an empty file is a valid configuration (the quickstart). Unknown keys,
wrong types and out-of-range values raise :class:`~ckptnas.errors.ConfigError` naming the key,
before anything is trained or written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w

from ckptnas.errors import ConfigError

Check = Callable[[Any], bool]


def _opt(default: Any, check: Check | None = None, why: str = "") -> Any:
    """A dataclass field with a default and a validity check shown in errors as ``why``."""
    factory: Callable[[], Any] | None = None
    if isinstance(default, list | dict):
        factory = lambda: type(default)(default)  # noqa: E731  # a fresh copy per instance
    meta = {"check": check, "why": why}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _positive(x: float) -> bool:
    return x > 0 and math.isfinite(x)


def _non_negative(x: float) -> bool:
    return x >= 0


class DataKind(StrEnum):
    """``[data] kind``: where the dataset comes from."""

    SYNTHETIC_COMBO = "synthetic_combo"
    SKLEARN = "sklearn"
    NETCDF = "netcdf"


#: The scikit-learn datasets ``[data] kind = "sklearn"`` loads; ``digits_images`` is ``digits``
#: as 1x8x8 images (channel, height, width).
SKLEARN_NAMES = ("diabetes", "breast_cancer", "digits", "digits_images")


class Task(StrEnum):
    """``[data] task``: what the head predicts (``auto`` decides from the target)."""

    AUTO = "auto"
    REGRESSION = "regression"
    CLASSIFICATION = "classification"


class SpaceKind(StrEnum):
    """``[space] kind``: which family of networks is searched."""

    DENSE = "dense"
    CONV1D = "conv1d"
    CONV2D = "conv2d"
    CELL = "cell"
    PYTHON = "python"


class StrategyKind(StrEnum):
    """``[search] strategy``: how architectures are proposed."""

    EVOLUTION = "evolution"
    RANDOM = "random"
    OPTUNA = "optuna"


class SamplerKind(StrEnum):
    """``[search] sampler``: the Optuna sampler of ``strategy = "optuna"``."""

    TPE = "tpe"
    NSGA2 = "nsga2"
    NSGA3 = "nsga3"
    RANDOM = "random"
    GP = "gp"
    QMC = "qmc"


class Scheduler(StrEnum):
    """Built-in names of ``[search] scheduler`` (how long each candidate trains).

    Any scheduler of :func:`ckptnas.plugins.registry` ``("scheduler")`` may be named, such
    as ``hyperband`` and ``median``.
    """

    #: Every candidate trains ``[training] epochs``.
    NONE = "none"
    #: Asynchronous successive halving: candidates train to rungs, the best are continued.
    ASHA = "asha"


class Direction(StrEnum):
    """One entry of ``[search] directions``."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


#: Quantities a candidate may be judged by (``[search] objectives``), each with the direction
#: that is better when ``[search] directions`` does not say.
OBJECTIVES = {
    "val_metric": Direction.MAXIMIZE,
    "val_loss": Direction.MINIMIZE,
    "n_params": Direction.MINIMIZE,
    "latency": Direction.MINIMIZE,
}

#: The hyperparameters ``[search.hyperparameters]`` may search: name to the check each value
#: must pass and its words in errors.
HYPERPARAMETERS: dict[str, tuple[Check, str]] = {
    "learning_rate": (_positive, "> 0"),
    "weight_decay": (_non_negative, ">= 0"),
    "dropout": (lambda x: 0 <= x < 1, ">= 0 and < 1"),
    "batch_size": (_positive, "> 0"),
}


class Policy(StrEnum):
    """``[transfer] policy``: how a new candidate inherits weights (see :mod:`ckptnas.search`)."""

    LCP = "lcp"
    NONE = "none"
    ALIGNED = "aligned"
    WIDEN = "widen"


class Device(StrEnum):
    """``[training] device``: where candidates train (``auto``: a GPU when the worker has one)."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Precision(StrEnum):
    """``[training] precision``: the floating-point type of forward passes in training.

    Weights, optimizer state and checkpoints are float32 either way; ``bfloat16`` runs the
    forward passes (training, validation, the latency measurement) under
    :func:`torch.autocast`, and the losses in float32.
    """

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


class ClusterKind(StrEnum):
    """``[cluster] kind``: which Dask cluster runs the candidates."""

    LOCAL = "local"
    ADDRESS = "address"
    SLURM = "slurm"
    PBS = "pbs"
    LSF = "lsf"
    SGE = "sge"


#: The kinds whose workers are batch jobs, started through dask-jobqueue.
BATCH_KINDS = (ClusterKind.SLURM, ClusterKind.PBS, ClusterKind.LSF, ClusterKind.SGE)


def _choice(default: StrEnum) -> Any:
    """A field holding one value of a closed set (``default``'s enum), checked and named."""
    values = [c.value for c in type(default)]
    words = f"one of {', '.join(values)}" if len(values) > 2 else " or ".join(values)
    return _opt(default.value, lambda x: x in values, words)


def _all_positive(xs: list[int]) -> bool:
    return len(xs) > 0 and all(x > 0 for x in xs)


ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "silu")


def rung_epochs(min_epochs: int, max_epochs: int, reduction_factor: int) -> tuple[int, ...]:
    """The epochs of each rung, lowest first.

    Examples
    --------
    >>> rung_epochs(1, 9, 3)
    (1, 3, 9)
    >>> rung_epochs(1, 10, 3)
    (1, 3, 9, 10)
    """
    if not 0 < min_epochs <= max_epochs or reduction_factor < 2:
        raise ValueError("rungs need 0 < min_epochs <= max_epochs and reduction_factor >= 2")
    rungs = [min_epochs]
    while rungs[-1] * reduction_factor <= max_epochs:
        rungs.append(rungs[-1] * reduction_factor)
    if rungs[-1] < max_epochs:
        rungs.append(max_epochs)
    return tuple(rungs)


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: what the run is called, where it is written, how many candidates."""

    name: str = _opt(
        "quickstart",
        lambda x: bool(x) and x.isprintable() and x not in (".", "..") and not {"/", "\\"} & set(x),
        "a plain name: the folder under runs/ (no '/', not '.' or '..'; [experiment] out "
        "takes a path)",
    )
    out: str = _opt("", why="a directory path; empty means runs/<name>")
    seed: int = _opt(0, _non_negative, ">= 0")
    max_candidates: int = _opt(30, _positive, "> 0")
    max_in_flight: int = _opt(0, _non_negative, ">= 0 (0: sized from task and turn-around times)")
    allow_duplicates: bool = _opt(False)
    flush_interval: float = _opt(5.0, _positive, "> 0 seconds")
    max_retries: int = _opt(2, _non_negative, ">= 0")
    max_training_epochs: int = _opt(0, _non_negative, ">= 0 (0: no limit)")


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which dataset, and how it is split into training and validation rows."""

    kind: str = _choice(DataKind.SYNTHETIC_COMBO)
    name: str = _opt("", why="for kind = sklearn: diabetes, breast_cancer, digits or digits_images")
    path: str = _opt("", why="for kind = netcdf: the file to read")
    inputs: list[str] = _opt([], why="for kind = netcdf: the input variables")
    target: str = _opt("", why="for kind = netcdf: the target variable")
    sample_dim: str = _opt(
        "",
        why="for kind = netcdf: the dimension that indexes samples in inputs and target; "
        "empty means the target's only dimension",
    )
    task: str = _choice(Task.AUTO)
    val_fraction: float = _opt(0.2, lambda x: 0 < x < 1, "strictly between 0 and 1")
    n_samples: int = _opt(6000, lambda x: x >= 10, ">= 10 (synthetic data only)")
    noise: float = _opt(0.1, _non_negative, ">= 0 (synthetic data only)")


@dataclass(frozen=True)
class SpaceConfig:
    """``[space]``: the search space; the other keys shape the layered (``dense``) space."""

    kind: str = _choice(SpaceKind.DENSE)
    factory: str = _opt(
        "",
        why="for kind = python: 'module:function' or 'path/to/file.py:function', called as "
        "function(inputs, output_size, **options)",
    )
    options: dict[str, Any] = _opt(
        {}, why="a table of keyword arguments for the space of kinds other than dense"
    )
    num_nodes: int = _opt(4, _positive, "> 0")
    input_nodes: int = _opt(1, _non_negative, ">= 0")
    units: list[int] = _opt([16, 32, 64, 128], _all_positive, "a non-empty list of positive ints")
    activations: list[str] = _opt(
        ["relu", "tanh"],
        lambda xs: len(xs) > 0 and all(a in ACTIVATIONS for a in xs),
        f"a non-empty list drawn from {', '.join(ACTIVATIONS)}",
    )
    skip_connections: bool = _opt(True)
    max_skip: int = _opt(2, _positive, "> 0")
    shared_inputs: list[list[str]] = _opt([], why="groups of input names sharing a sub-network")


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: what proposes candidates, what it optimises, how long candidates train."""

    strategy: str = _choice(StrategyKind.EVOLUTION)
    population_size: int = _opt(10, lambda x: x >= 2, ">= 2")
    sample_size: int = _opt(3, _positive, "> 0")
    mutation_bias: float = _opt(0.0, _non_negative, ">= 0 (0: uniform over nodes)")
    sampler: str = _choice(SamplerKind.TPE)
    sampler_options: dict[str, Any] = _opt({}, why="keyword arguments of the Optuna sampler")
    objectives: list[str] = _opt(
        ["val_metric"],
        lambda xs: 0 < len(xs) == len(set(xs)) and all(x in OBJECTIVES for x in xs),
        f"a non-empty list without repeats drawn from {', '.join(OBJECTIVES)}",
    )
    directions: list[str] = _opt(
        [],
        lambda xs: all(x in tuple(Direction) for x in xs),
        "a list of maximize or minimize, one per objective (empty: each objective's own)",
    )
    hyperparameters: dict[str, Any] = _opt(
        {}, why=f"a table of ranges or lists for {', '.join(HYPERPARAMETERS)}"
    )
    scheduler: str = _opt(
        Scheduler.NONE.value,
        lambda x: isinstance(x, str) and x != "",
        "the name of an installed scheduler (ckptnas.plugins.registry('scheduler'))",
    )
    scheduler_options: dict[str, Any] = _opt(
        {}, why="options of the scheduler, which checks them itself"
    )
    min_epochs: int = _opt(1, _positive, "> 0")
    max_epochs: int = _opt(0, _non_negative, ">= 0 (0: [training] epochs)")
    reduction_factor: int = _opt(3, lambda x: x >= 2, ">= 2")

    def rungs(self, training_epochs: int) -> tuple[int, ...]:
        """Epochs of each rung of the scheduler; one rung of ``training_epochs`` without."""
        from ckptnas.plugins import registry  # loaded only when asked

        scheduler = registry("scheduler").get(self.scheduler)
        epochs: tuple[int, ...] = scheduler.from_config(self, training_epochs).rung_epochs
        return epochs

    @property
    def resolved_directions(self) -> list[str]:
        """One direction per objective: as given, or each objective's own."""
        return list(self.directions) or [str(OBJECTIVES[o]) for o in self.objectives]


@dataclass(frozen=True)
class TransferConfig:
    """``[transfer]``: how a new candidate inherits weights."""

    policy: str = _choice(Policy.LCP)
    # Off by default: measured here (docs/results.md), trainable transferred layers keep
    # improving down a lineage, while frozen ones (the published setting) stay as good as the
    # donor's short training left them.
    freeze: bool = _opt(False)
    # On by default: with freeze, the quickstart's 50 candidates took 3.5 MB of checkpoints
    # instead of 10.3 MB (experiments/dedup_frozen.py). A frozen child's save took 5.0-6.3 ms
    # (median) against 4.8-5.0 ms storing every tensor, most of either the fsync.
    dedup: bool = _opt(True)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: how each candidate is trained."""

    epochs: int = _opt(2, _positive, "> 0")
    batch_size: int = _opt(64, _positive, "> 0")
    learning_rate: float = _opt(1e-3, _positive, "> 0")
    device: str = _choice(Device.AUTO)
    precision: str = _choice(Precision.FLOAT32)


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: where candidates run."""

    kind: str = _choice(ClusterKind.LOCAL)
    scheduler: str = _opt("", why="a scheduler address; empty starts a LocalCluster")
    n_workers: int = _opt(0, _non_negative, ">= 0 (0: one per GPU, else one per core)")
    candidates_per_gpu: int = _opt(1, _positive, ">= 1")
    adapt_minimum: int = _opt(0, _non_negative, ">= 0")
    adapt_maximum: int = _opt(0, _non_negative, ">= 0 (0: a fixed n_workers)")
    # dask-jobqueue's own keywords, passed through as they are: the one place to learn them is
    # its documentation, and a keyword it does not know is refused when the cluster is made.
    jobqueue: dict[str, Any] = _opt({}, why="a table of dask-jobqueue keywords")
    # Off by default: Dask's statistical profiler samples the training thread every 10 ms, and
    # measured here it slowed the epochs of small networks by several percent (docs/benchmarks.md).
    worker_profile: bool = _opt(False)


@dataclass(frozen=True)
class Config:
    """A whole experiment configuration, one attribute per TOML table."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def replace(self, table: str, **values: Any) -> Config:
        """Return a copy with some keys of one table replaced (and checked).

        Examples
        --------
        >>> Config().replace("experiment", max_candidates=5).experiment.max_candidates
        5
        """
        merged = {**to_dict(self), table: {**to_dict(self)[table], **values}}
        return config_from_dict(merged)

    def to_toml(self) -> str:
        """The configuration as TOML text, every key resolved."""
        return tomli_w.dumps(to_dict(self))

    def to_json(self) -> str:
        """The configuration as JSON text, every key resolved."""
        return json.dumps(to_dict(self), sort_keys=True)


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as nested plain dictionaries."""
    return dataclasses.asdict(config)


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        (inner,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is dict:
        return "a table"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation)
        return f"a list of {_type_name(inner).removeprefix('an ').removeprefix('a ')}s"
    return names.get(annotation, str(annotation))


def _table_from_dict(cls: type[Any], table: str, values: Mapping[str, Any]) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{table}] must be a table, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"[{table}] unknown key {key!r}; known keys: {', '.join(sorted(known))}"
            )
    for key, value in values.items():
        annotation = hints[key]
        if not _type_ok(value, annotation):
            raise ConfigError(f"[{table}] {key} = {value!r} must be {_type_name(annotation)}")
        check = known[key].metadata.get("check")
        if check is not None and not check(value):
            raise ConfigError(f"[{table}] {key} = {value!r} must be {known[key].metadata['why']}")
    return cls(**{k: float(v) if hints[k] is float else v for k, v in values.items()})


def config_from_dict(values: Mapping[str, Any]) -> Config:
    """Build and check a :class:`Config` from nested dictionaries (the parsed TOML).

    Parameters
    ----------
    values : mapping
        Table name to a mapping of keys to values. Missing tables and keys take their defaults.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        On an unknown table or key, a wrong type or an out-of-range value.
    """
    tables = {f.name: f.default_factory for f in dataclasses.fields(Config)}
    for name in values:
        if name not in tables:
            raise ConfigError(
                f"unknown table [{name if name.isprintable() else repr(name)}]; "
                f"known tables: {', '.join(f'[{t}]' for t in tables)}"
            )
    built = {
        name: _table_from_dict(factory, name, values.get(name, {}))  # type: ignore[arg-type]
        for name, factory in tables.items()
    }
    config = Config(**built)
    _check_across_tables(config)
    return config


def _check_across_tables(config: Config) -> None:
    data = config.data
    if data.kind == DataKind.SKLEARN and data.name not in SKLEARN_NAMES:
        raise ConfigError(
            f"[data] name = {data.name!r} must be diabetes, breast_cancer, digits or "
            "digits_images when kind = 'sklearn'"
        )
    if data.kind == DataKind.NETCDF:
        if not data.path:
            raise ConfigError("[data] path must name a netCDF file when kind = 'netcdf'")
        if not data.inputs:
            raise ConfigError("[data] inputs must list at least one variable when kind = 'netcdf'")
        if not data.target:
            raise ConfigError("[data] target must name a variable when kind = 'netcdf'")
    _check_space(config.space)
    if config.search.sample_size > config.search.population_size:
        raise ConfigError(
            f"[search] sample_size = {config.search.sample_size} must not exceed "
            f"population_size = {config.search.population_size}"
        )
    _check_search(config.search, config.training)
    budget, first = (
        config.experiment.max_training_epochs,
        config.search.rungs(config.training.epochs)[0],
    )
    if budget and budget < first:
        raise ConfigError(
            f"[experiment] max_training_epochs = {budget} is less than the {first} epochs "
            "one candidate trains"
        )
    _check_cluster(config.cluster)
    if config.training.batch_size > data.n_samples and data.kind == DataKind.SYNTHETIC_COMBO:
        raise ConfigError(
            f"[training] batch_size = {config.training.batch_size} exceeds "
            f"[data] n_samples = {data.n_samples}"
        )


def _check_space(space: SpaceConfig) -> None:
    kind = SpaceKind(space.kind)
    if kind == SpaceKind.PYTHON:
        module, _, function = space.factory.rpartition(":")
        if not module or not function.isidentifier():
            raise ConfigError(
                f"[space] factory = {space.factory!r} must be 'module:function' or "
                "'path/to/file.py:function' when kind = 'python'"
            )
    elif space.factory:
        raise ConfigError(f"[space] factory is for kind = 'python', not kind = {kind.value!r}")
    if space.options and kind == SpaceKind.DENSE:
        raise ConfigError(
            "[space.options] are for kinds other than dense; the dense space takes its keys "
            "in [space] itself"
        )


def _check_search(search: SearchConfig, training: TrainingConfig) -> None:
    if search.objectives[0] != "val_metric" or search.resolved_directions[0] != "maximize":
        raise ConfigError(
            f"[search] objectives = {search.objectives!r} must start with 'val_metric', "
            "maximized: it is the primary objective that summaries and top-K rank by"
        )
    if search.directions and len(search.directions) != len(search.objectives):
        raise ConfigError(
            f"[search] directions = {search.directions!r} must give one direction for each of "
            f"the {len(search.objectives)} objectives {search.objectives!r}"
        )
    for name, value in search.hyperparameters.items():
        _check_hyperparameter(name, value)
    # The scheduler checks its own options (and [search] keys it reads) before it is built.
    from ckptnas.plugins import registry  # loaded only when a config is checked

    registry("scheduler").get(search.scheduler).check(search, training.epochs)


def _check_hyperparameter(name: str, value: Any) -> None:
    """Check one entry of ``[search.hyperparameters]``: a range table or a list of choices."""
    key = f"[search.hyperparameters] {name}"
    if name not in HYPERPARAMETERS:
        raise ConfigError(
            f"[search.hyperparameters] unknown key {name!r}; known keys: "
            f"{', '.join(sorted(HYPERPARAMETERS))}"
        )
    check, bounds = HYPERPARAMETERS[name]
    integer = name == "batch_size"
    kind = "an integer" if integer else "a number"

    def allowed(x: Any) -> bool:
        number = isinstance(x, int if integer else int | float) and not isinstance(x, bool)
        return number and bool(check(x))

    if isinstance(value, list):
        if not value or not all(allowed(x) for x in value):
            raise ConfigError(f"{key} = {value!r} must be a non-empty list, each {kind} {bounds}")
        return
    if integer or not isinstance(value, Mapping):
        what = "a list of choices" if integer else "a table {low, high, log} or a list of choices"
        raise ConfigError(f"{key} = {value!r} must be {what}")
    if set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
        raise ConfigError(f"{key} = {value!r} must have keys low, high and optionally log")
    low, high, log = value["low"], value["high"], value.get("log", False)
    if not (allowed(low) and allowed(high) and low < high):
        raise ConfigError(f"{key} = {value!r} needs low < high, both {bounds}")
    if not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError(f"{key} = {value!r}: log must be true or false, and needs low > 0")


def _check_cluster(cluster: ClusterConfig) -> None:
    kind = ClusterKind(cluster.kind)
    if kind == ClusterKind.ADDRESS and not cluster.scheduler:
        raise ConfigError("[cluster] scheduler must name an address when kind = 'address'")
    if cluster.scheduler and kind not in (ClusterKind.LOCAL, ClusterKind.ADDRESS):
        raise ConfigError(
            f"[cluster] scheduler = {cluster.scheduler!r} is for kind = 'address', not "
            f"kind = {kind.value!r}"
        )
    if cluster.jobqueue and kind not in BATCH_KINDS:
        raise ConfigError(
            "[cluster.jobqueue] options are for kind = slurm, pbs, lsf or sge, not "
            f"kind = {kind.value!r}"
        )
    if cluster.adapt_maximum and cluster.adapt_maximum < cluster.adapt_minimum:
        raise ConfigError(
            f"[cluster] adapt_maximum = {cluster.adapt_maximum} must not be below "
            f"adapt_minimum = {cluster.adapt_minimum}"
        )
    if kind in BATCH_KINDS and not (cluster.n_workers or cluster.adapt_maximum):
        raise ConfigError(
            f"[cluster] kind = {kind.value!r} needs n_workers (workers to start) or "
            "adapt_maximum (the most workers to scale to)"
        )


def load_config(path: str | Path) -> Config:
    """Read and check a TOML configuration file.

    Parameters
    ----------
    path : str or Path
        The TOML file.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or holds a bad key or value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _paths_from(config_from_dict(values), path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _paths_from(config: Config, folder: Path) -> Config:
    """The configuration with its relative paths taken from ``folder`` (the file's), as text.

    A configuration file names its data next to itself; read from anywhere, it finds them.
    """
    for table, key in (("data", "path"), ("experiment", "out")):
        value = getattr(getattr(config, table), key)
        if value and not Path(value).is_absolute():
            config = config.replace(table, **{key: str((folder / value).resolve())})
    module, _, function = config.space.factory.rpartition(":")
    if module.endswith(".py") and not Path(module).is_absolute():
        config = config.replace("space", factory=f"{(folder / module).resolve()}:{function}")
    return config
