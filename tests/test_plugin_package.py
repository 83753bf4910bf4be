"""A separate package adds one of each kind of extension through entry points alone.

The package below (a module and its installed metadata, as pip leaves them) registers a
scheduler, a strategy, a transfer policy, a space and a cluster kind; a search run from TOML
with ``ckptnas run`` uses all five, and ckptnas itself is not changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import xarray as xr

PLUGIN = '''
"""One of each kind of ckptnas extension, each as small as it can be."""

import contextlib
import os
from pathlib import Path

from ckptnas.runtime import CLUSTERS
from ckptnas.search import SCRATCH, RandomSearch, Scheduler
from ckptnas.space import SPACES


class Twice(Scheduler):
    """Every candidate trains twice ``[training] epochs``, once."""

    @classmethod
    def from_config(cls, search, training_epochs):
        return cls((2 * training_epochs,))


class Drawn:
    """Architectures drawn at random, by the package's own entry."""

    def check(self, config):
        pass

    def make(self, config, space, common):
        return RandomSearch(space, **common)


class Fresh:
    """No candidate inherits anything."""

    def __init__(self, space):
        self.space = space

    def add(self, candidate_id, arch, objective):
        pass

    def discard(self, candidate_id):
        pass

    def plan(self, arch):
        return SCRATCH


class Narrow:
    """The dense space, searched under another name."""

    def check(self, config):
        SPACES.get("dense").check(config)

    def build(self, table, inputs, output_size):
        return SPACES.get("dense").build(table, inputs, output_size)


class Marked:
    """The embedded cluster, leaving a mark where the run connected through it."""

    batch = False

    def check(self, config):
        pass

    @contextlib.contextmanager
    def connect(self, config):
        Path(os.environ["PLUGGED_MARK"]).write_text(config.experiment.name)
        with CLUSTERS.get("local").connect(config) as client:
            yield client


DRAWN = Drawn()
NARROW = Narrow()
MARKED = Marked()
'''

ENTRY_POINTS = """
[ckptnas.schedulers]
twice = ckptnas_five:Twice

[ckptnas.strategies]
drawn = ckptnas_five:DRAWN

[ckptnas.policies]
fresh = ckptnas_five:Fresh

[ckptnas.spaces]
narrow = ckptnas_five:NARROW

[ckptnas.clusters]
marked = ckptnas_five:MARKED
"""

CONFIG = """
[experiment]
name = "plugged"
max_candidates = 4

[data]
kind = "synthetic_combo"
n_samples = 400

[space]
kind = "narrow"
num_nodes = 2
units = [8, 16]

[search]
strategy = "drawn"
scheduler = "twice"

[transfer]
policy = "fresh"

[training]
epochs = 1

[cluster]
kind = "marked"
n_workers = 1
"""


def installed_plugin(folder: Path) -> Path:
    """The package and its ``*.dist-info``, as ``pip install`` leaves them in site-packages."""
    folder.mkdir()
    (folder / "ckptnas_five.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "ckptnas_five-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ckptnas-five\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


def test_a_search_from_toml_uses_a_plugin_of_each_kind(tmp_path: Path) -> None:
    site = installed_plugin(tmp_path / "site")
    (tmp_path / "plugged.toml").write_text(CONFIG)
    mark = tmp_path / "connected"
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "PLUGGED_MARK": str(mark),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ckptnas", "run", "plugged.toml", "--out", "run", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert mark.read_text() == "plugged"  # the cluster kind connected the run
    ds = xr.load_dataset(tmp_path / "run" / "results.nc")
    assert ds.sizes["candidate"] == 4
    assert set(ds["status"].values) == {"ok"}
    assert ds.sizes["epoch"] == 2  # the scheduler: twice [training] epochs
    assert (ds["parent"] == -1).all()  # the policy: nothing inherited
    assert set(ds["stage"].values) == {"random"}  # the strategy: drawn at random
    assert 'kind = "narrow"' in ds.attrs["config"]  # the space: built by the package's entry


def test_an_unknown_name_lists_the_installed_plugins(tmp_path: Path) -> None:
    site = installed_plugin(tmp_path / "site")
    (tmp_path / "bad.toml").write_text(
        CONFIG.replace('scheduler = "twice"', 'scheduler = "thrice"')
    )
    env = os.environ | {"PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "ckptnas", "run", "bad.toml", "--out", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "[search] scheduler = 'thrice' must be one of none, asha, hyperband, median, twice" in (
        done.stderr
    )
    assert not (tmp_path / "run").exists()
