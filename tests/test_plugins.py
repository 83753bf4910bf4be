"""Extension points: each registry resolves its built-in names, the code asks the entries, and
a third-party package's entry points add names that the configuration accepts and lists."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

from ckptnas.config import Config, config_from_dict
from ckptnas.errors import ConfigError
from ckptnas.plugins import Registry, registry, registry_kinds

BUILT_IN = {
    "space": ("dense", "conv1d", "conv2d", "cell", "python"),
    "strategy": ("evolution", "random", "optuna"),
    "sampler": ("tpe", "nsga2", "nsga3", "random", "gp", "qmc"),
    "policy": ("lcp", "none", "aligned", "widen"),
    "objective": ("val_metric", "val_loss", "n_params", "latency"),
    "cluster": ("local", "address", "slurm", "pbs", "lsf", "sge"),
    "data": ("synthetic_combo", "sklearn", "netcdf"),
}


@contextlib.contextmanager
def registered(kind: str, name: str, entry: Any) -> Iterator[None]:
    """``entry`` registered as ``name`` in the registry of ``kind`` while the block runs."""
    entries = registry(kind)
    entries.register(name, entry)
    try:
        yield
    finally:
        del entries._entries[name]


@pytest.mark.parametrize(("kind", "names"), sorted(BUILT_IN.items()))
def test_registry_resolves_each_built_in_name(kind: str, names: tuple[str, ...]) -> None:
    entries = registry(kind)
    assert entries.names()[: len(names)] == names
    for name in names:
        assert entries.get(name) is not None


def test_every_registry_kind_is_found() -> None:
    for kind in registry_kinds():
        assert isinstance(registry(kind), Registry)


def test_checking_a_config_of_every_kind_imports_no_heavy_library() -> None:
    tables = {
        "space": {"kind": "conv2d"},
        "search": {"strategy": "optuna", "sampler": "nsga2", "objectives": ["val_metric"]},
        "transfer": {"policy": "widen"},
        "cluster": {"kind": "slurm", "n_workers": 1},
        "data": {"kind": "sklearn", "name": "digits_images"},
    }
    code = (
        "import json, sys\n"
        "from ckptnas.config import config_from_dict\n"
        f"config_from_dict(json.loads({json.dumps(tables)!r}))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not loaded & {"torch", "sklearn", "optuna", "distributed", "dask_jobqueue"}


class EveryOtherScratch:
    """A policy of this test: the lcp plan for odd architectures' sums, scratch otherwise."""

    def __init__(self, space: Any) -> None:
        from ckptnas.search._policies import LongestPrefix

        self.inner = LongestPrefix(space)
        self.add, self.discard = self.inner.add, self.inner.discard

    def plan(self, arch: Any) -> Any:
        from ckptnas.search import SCRATCH

        return self.inner.plan(arch) if sum(arch) % 2 else SCRATCH


def test_a_registered_policy_is_what_the_planner_asks() -> None:
    from ckptnas.search import SCRATCH, Planner
    from ckptnas.space import SearchSpace

    space = SearchSpace((("x", 4),), output_size=1, num_nodes=2, input_nodes=0)
    with registered("policy", "every_other", EveryOtherScratch):
        config = config_from_dict({"transfer": {"policy": "every_other"}})
        planner = Planner(config.transfer.policy, space)
        planner.add(0, (1, 0, 1, 0), 0.5)
        assert planner.plan((1, 0, 2, 0)).donor == 0  # odd: lcp's plan
        assert planner.plan((1, 0, 1, 1)).donor == 0
        assert planner.plan((1, 0, 2, 1)) is SCRATCH
    with pytest.raises(ConfigError, match=r"must be one of lcp, none, aligned, widen$"):
        config_from_dict({"transfer": {"policy": "every_other"}})


class Halved:
    """An objective of this test: half the parameter count, smaller is better."""

    direction = "minimize"

    def value(self, measured: dict[str, float]) -> float:
        return measured["n_params"] / 2


def test_a_registered_objective_is_computed_by_its_entry() -> None:
    from ckptnas.runtime._objectives import objective_values

    with registered("objective", "half_params", Halved()):
        search = config_from_dict({"search": {"objectives": ["val_metric", "half_params"]}}).search
        assert search.resolved_directions == ["maximize", "minimize"]
        assert objective_values(search.objectives, 0.8, 0.3, 1200) == [0.8, 600.0]


class PickyRandom:
    """A strategy of this test: random search, refusing a population below 4."""

    def check(self, config: Config) -> None:
        if config.search.population_size < 4:
            raise ConfigError("[search] population_size must be >= 4 for strategy = 'mine'")

    def make(self, config: Config, space: Any, common: dict[str, Any]) -> Any:
        from ckptnas.search import RandomSearch

        return RandomSearch(space, **common)


def test_a_registered_strategy_checks_its_options_and_is_made_by_its_entry() -> None:
    from ckptnas.search import RandomSearch, make_strategy
    from ckptnas.space import SearchSpace

    space = SearchSpace((("x", 4),), output_size=1, num_nodes=2, input_nodes=0)
    with registered("strategy", "mine", PickyRandom()):
        with pytest.raises(ConfigError, match="population_size must be >= 4"):
            config_from_dict({"search": {"strategy": "mine", "population_size": 3}})
        config = config_from_dict({"search": {"strategy": "mine"}})
        assert isinstance(make_strategy(config, space), RandomSearch)


class Ramp:
    """A data source of this test: a noiseless line."""

    def files(self, table: Any) -> list[str]:
        return []

    def load(self, table: Any, seed: int) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
        x = np.linspace(0, 1, 40, dtype=np.float64)[:, None]
        return "ramp", {"x": x}, 3 * x[:, 0]


def test_a_registered_data_source_is_loaded_by_its_entry() -> None:
    from ckptnas.data import load_data, require_data_file

    with registered("data", "ramp", Ramp()):
        config = config_from_dict({"data": {"kind": "ramp"}, "training": {"batch_size": 8}})
        require_data_file(config.data)
        data = load_data(config.data)
    assert data.name == "ramp" and data.input_shapes == {"x": (1,)}
    assert len(data.train_index) + len(data.val_index) + len(data.test_index) == 40


class Wide:
    """A space kind of this test: the dense space, always four nodes wide."""

    def build(self, table: Any, inputs: Any, output_size: int) -> Any:
        from ckptnas.space import ResolvedSpace, SearchSpace

        sizes = tuple((name, shape[0]) for name, shape in inputs.items())
        return ResolvedSpace(SearchSpace(sizes, output_size=output_size, num_nodes=4))


def test_a_registered_space_kind_is_built_by_its_entry(tmp_path: Path) -> None:
    from ckptnas.data import load_data
    from ckptnas.runtime import Experiment

    with registered("space", "wide", Wide()):
        config = config_from_dict({"space": {"kind": "wide"}, "data": {"n_samples": 100}})
        data = load_data(config.data).describe()
        space = Experiment(config, tmp_path / "run")._make_space(data)
    assert space.node_names[-2:] == ["trunk.3", "trunk.3.skip"]


class Printed:
    """A batch cluster kind of this test, whose job script is one line."""

    batch = True

    def check(self, config: Config) -> None:
        pass

    def job_script(self, config: Config) -> str:
        return f"#!/bin/sh\n# {config.cluster.n_workers} workers"


def test_a_registered_batch_kind_writes_the_job_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ckptnas.cli import main

    path = tmp_path / "c.toml"
    path.write_text('[cluster]\nkind = "printed"\nn_workers = 3\n')
    with registered("cluster", "printed", Printed()):
        assert main(["cluster-script", str(path)]) == 0
        assert "# 3 workers" in capsys.readouterr().out
        path.write_text("[cluster]\nn_workers = 3\n")
        assert main(["cluster-script", str(path)]) == 2
        assert "is for kind = slurm, pbs, lsf, sge or printed" in capsys.readouterr().err


class Shared:
    """A cluster kind of this test: the session's cluster, left running after the run."""

    batch = False

    def __init__(self, client: Client) -> None:
        self.client = client

    def connect(self, config: Config) -> contextlib.AbstractContextManager[Client]:
        return contextlib.nullcontext(self.client)


def test_a_registered_cluster_kind_connects_the_run(
    client: Client, tiny_config: Config, tmp_path: Path
) -> None:
    from ckptnas.runtime import Experiment

    with registered("cluster", "shared", Shared(client)):
        config = tiny_config.replace("cluster", kind="shared")
        config = config.replace("experiment", max_candidates=2)
        results = Experiment(config, tmp_path / "run", progress=False).run()
    assert results.sizes["candidate"] == 2
    assert client.status == "running"


PLUGIN = '''
"""A third-party package of extensions, found through its entry points."""
from ckptnas.errors import ConfigError
from ckptnas.search._policies import NoTransfer


class Scratch(NoTransfer):
    """A transfer policy that never transfers, under another name."""


class Bounded:
    """An objective: the validation loss, clipped at 1."""

    direction = "minimize"

    def value(self, measured):
        return min(measured["val_loss"], 1.0)


class Line:
    """A data source refusing an empty [data] name."""

    def check(self, config):
        if not config.data.name:
            raise ConfigError("[data] name must name the line when kind = 'line'")

    def files(self, table):
        return []

    def load(self, table, seed):
        import numpy as np

        x = np.arange(30.0)[:, None]
        return table.name, {"x": x}, x[:, 0]


LINE = Line()
BOUNDED = Bounded()
'''

ENTRY_POINTS = """
[ckptnas.policies]
plugged_scratch = ckptnas_plugged:Scratch

[ckptnas.objectives]
bounded_loss = ckptnas_plugged:BOUNDED

[ckptnas.data_sources]
line = ckptnas_plugged:LINE
"""


def plugin_distribution(folder: Path) -> Path:
    """A folder holding a package and its installed metadata, as pip would leave them."""
    (folder / "ckptnas_plugged.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "ckptnas_plugged-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ckptnas-plugged\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


def test_entry_points_of_an_installed_package_are_found_and_used(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from ckptnas.config import config_from_dict
        from ckptnas.data import load_data
        from ckptnas.errors import ConfigError
        from ckptnas.runtime._objectives import objective_values
        from ckptnas.search import SCRATCH, Planner
        from ckptnas.space import SearchSpace

        config = config_from_dict({
            "transfer": {"policy": "plugged_scratch"},
            "search": {"objectives": ["val_metric", "bounded_loss"]},
            "data": {"kind": "line", "name": "ramp"},
            "training": {"batch_size": 8},
        })
        space = SearchSpace((("x", 4),), output_size=1, num_nodes=2, input_nodes=0)
        planner = Planner(config.transfer.policy, space)
        planner.add(0, (1, 0, 1, 0), 0.5)
        assert planner.plan((1, 0, 1, 0)) is SCRATCH
        assert config.search.resolved_directions == ["maximize", "minimize"]
        assert objective_values(config.search.objectives, 0.5, 3.0, 10) == [0.5, 1.0]
        assert load_data(config.data).name == "ramp"
        for values in ({"transfer": {"policy": "closest"}}, {"data": {"kind": "line"}}):
            try:
                config_from_dict(values)
            except ConfigError as exc:
                print(exc)
        """
    )
    folder = plugin_distribution(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[transfer] policy = 'closest' must be one of lcp, none, aligned, widen, plugged_scratch",
        "[data] name must name the line when kind = 'line'",
    ]
