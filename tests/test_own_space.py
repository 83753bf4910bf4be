"""A user's search space: the example of docs/own-space.md, run as the page says, and bad ones."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from distributed import Client

from ckptnas import load_results
from ckptnas.cli import main

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
