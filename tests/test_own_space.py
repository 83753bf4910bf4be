"""A user's search space: the example of docs/own-space.md, run as the page says, and bad ones."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cloudpickle
import pytest
from distributed import Client

from ckptnas import load_results
from ckptnas.cli import main
from ckptnas.config import config_from_dict
from ckptnas.errors import SearchSpaceError
from ckptnas.runtime import Experiment, resume_experiment
from ckptnas.search import apply_plan, plan_transfer
from ckptnas.space import ResolvedSpace

PAGE = Path(__file__).resolve().parents[1] / "docs" / "own-space.md"


def page_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text("utf-8"), re.DOTALL)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the page's my_spaces.py and my-space.toml, the current directory."""
    (tmp_path / "my_spaces.py").write_text(page_blocks("python")[0])
    (tmp_path / "my-space.toml").write_text(page_blocks("toml")[0])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]


def test_page_example_runs_through_the_cli_on_an_external_cluster(
    project: Path, client: Client
) -> None:
    # The workers of the shared cluster never saw my_spaces.py: the space travels by value.
    out = project / "run"
    address = client.scheduler.address
    assert (
        main(["run", "my-space.toml", "--out", str(out), "--scheduler", address, "--no-progress"])
        == 0
    )
    ds = load_results(out)
    assert ds.sizes["candidate"] == 8
    assert set(ds.status.values) == {"ok"}
    assert list(ds.node_name.values) == ["node0", "node1", "node2"]
    assert (ds.parent >= 0).any()
    sys.path.insert(0, str(project))
    try:
        from my_spaces import make_space  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(project))
    space = make_space({"x": (64,)}, 10, widths=[16, 32], depth=3)
    first = tuple(int(a) for a in ds.arch.values[0])
    assert ds.arch_str.values[0] == space.describe(first)


def test_page_python_example_runs(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(project))
    namespace: dict[str, object] = {}
    exec(compile(page_blocks("python")[1], str(PAGE), "exec"), namespace)
    ds = load_results(project / "runs" / "my-space-python")
    assert ds.sizes["candidate"] == 6
    assert set(ds.status.values) == {"ok"}


@pytest.mark.parametrize(
    ("factory", "source", "needle"),
    [
        ("missing.py:make_space", "", "does not exist"),
        ("spaces.py:make_it", "def make_space(inputs, output_size): pass", "has no function"),
        ("spaces.py:make_space", "def make_space(inputs, output_size):\n    1 / 0", "ZeroDivision"),
        (
            "spaces.py:make_space",
            "def make_space(inputs, output_size):\n    return 3",
            "no sample()",
        ),
        ("no_such_module_here:make_space", "", "cannot import"),
    ],
)
def test_bad_factories_stop_before_training_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], factory: str, source: str, needle: str
) -> None:
    if source:
        (tmp_path / "spaces.py").write_text(source)
    config = tmp_path / "c.toml"
    config.write_text(f'[space]\nkind = "python"\nfactory = "{factory}"\n')
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    one_error_line(capsys, "[space]", needle)
    assert not out.exists()


UNTRACEABLE = """
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a = nn.Linear(64, width)
        self.head = nn.Linear(width, 10)

    def forward(self, inputs):
        h = self.a(inputs["x"])
        return self.head(h if h.mean() > 0 else -h)


class GateSpace:
    widths = (4, 8)

    def sample(self, rng):
        return (int(rng.integers(2)),)

    def mutate(self, arch, rng):
        return (1 - arch[0],)

    def build(self, arch):
        return Gate(self.widths[arch[0]])
"""


def test_an_untraceable_space_is_refused_naming_the_identities_hook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = UNTRACEABLE + "\n\ndef make_space(inputs, output_size):\n    return GateSpace()\n"
    (tmp_path / "gate.py").write_text(source)
    config = tmp_path / "c.toml"
    config.write_text('[space]\nkind = "python"\nfactory = "gate.py:make_space"\n')
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    one_error_line(capsys, "cannot trace", "identities(arch)")


def test_identities_by_hand_plan_an_untraceable_space() -> None:
    namespace: dict[str, object] = {}
    exec(UNTRACEABLE, namespace)

    class Named(namespace["GateSpace"]):  # type: ignore[misc, valid-type]
        def identities(self, arch: tuple[int, ...]) -> dict[str, str]:
            return {"a": "a", "head": f"head-{arch[0]}"}

    space = ResolvedSpace(Named())
    plan = plan_transfer(space, (1,), (0,), donor_id=4)
    assert plan.tensors == ("a.weight", "a.bias")  # same identity, though it is wider here
    with pytest.raises(ValueError, match="donor shape"):
        apply_plan(space.build((1,)), space.build((0,)).state_dict(), plan, freeze=False)


class NotASpace:
    def sample(self, rng: object) -> tuple[int, ...]:
        return (0,)


def test_experiment_refuses_an_object_without_the_protocol(tmp_path: Path, client: Client) -> None:
    config = config_from_dict({"data": {"kind": "sklearn", "name": "digits"}})
    with pytest.raises(SearchSpaceError, match=r"no mutate\(\), build\(\)"):
        Experiment(config, tmp_path / "run", space=NotASpace(), progress=False).run(client)
    assert not (tmp_path / "run").exists()


def test_a_run_of_a_space_object_resumes_from_its_recorded_space(
    project: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(project))
    import my_spaces  # type: ignore[import-not-found]

    config = config_from_dict(
        {
            "experiment": {"max_candidates": 4},
            "data": {"kind": "sklearn", "name": "digits"},
            "training": {"epochs": 1},
        }
    )
    space = my_spaces.make_space({"x": (64,)}, 10, widths=[16, 32], depth=3)
    run = project / "run"
    # The shared cluster's workers cannot import my_spaces: refused before anything is written.
    with pytest.raises(SearchSpaceError, match="No module named 'my_spaces'"):
        Experiment(config, run, space=space, progress=False).run(client)
    assert not run.exists()
    cloudpickle.register_pickle_by_value(my_spaces)
    try:
        Experiment(config, run, space=space, progress=False).run(client)
    finally:
        cloudpickle.unregister_pickle_by_value(my_spaces)
    ds = resume_experiment(run, progress=False, max_candidates=6)
    assert ds.sizes["candidate"] == 6
    assert list(ds.node_name.values) == ["node0", "node1", "node2"]
    assert set(ds.status.values) == {"ok"}


# Each is added to the page's my_spaces.py, whose make_space it wraps.
LOCKED = """
import threading

page_space = make_space


def make_space(inputs, output_size, **options):
    space = page_space(inputs, output_size, **options)
    space.guard = threading.Lock()
    return space
"""

SHORT_MUTATION = """
page_space = make_space


def make_space(inputs, output_size, **options):
    space = page_space(inputs, output_size, **options)
    mutate = space.mutate
    space.mutate = lambda arch, rng: mutate(arch, rng)[:-1]
    return space
"""


@pytest.mark.parametrize(
    ("source", "needles"),
    [
        (LOCKED, ["[space]", "cannot be sent to the workers", "'guard'", "_thread.lock"]),
        (
            SHORT_MUTATION,
            ["mutate() returned", "of length 2", "must return an architecture of length 3"],
        ),
        ("import sys\nsys.exit(3)", ["spaces.py", "exited (sys.exit(3)) while being imported"]),
    ],
    ids=["unpicklable", "short-mutation", "exit-at-import"],
)
def test_broken_user_spaces_stop_with_one_line_naming_the_cause(
    project: Path, capsys: pytest.CaptureFixture[str], source: str, needles: list[str]
) -> None:
    (project / "spaces.py").write_text((project / "my_spaces.py").read_text() + source)
    config = project / "c.toml"
    config.write_text(
        (project / "my-space.toml")
        .read_text()
        .replace("my_spaces.py:make_space", "spaces.py:make_space")
        .replace("max_candidates = 8", "max_candidates = 12")
        + "\n[search]\npopulation_size = 2\nsample_size = 2\n"
    )
    out = project / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    one_error_line(capsys, *needles)
