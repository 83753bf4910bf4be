"""The package's layout as users and other subpackages rely on it: light imports, clear layers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import one_epoch_result

import ckptnas

HEAVY = ("torch", "sklearn", "matplotlib", "distributed", "scipy", "optuna")

#: What each subpackage may import of ckptnas (besides itself), as its docstring says.
#: ``plugins`` (the registries' machinery) and ``errors`` sit at the bottom: every layer may
#: import them, and the configuration nothing else.
ALLOWED = {
    "config": {"errors", "plugins"},
    "data": {"storage", "space", "config", "errors", "plugins", "_version"},
    "space": {"errors", "plugins"},
    "search": {"space", "storage", "config", "errors", "plugins"},
    "storage": {"space", "config", "errors", "plugins", "_version"},
    "runtime": {"space", "search", "storage", "data", "config", "errors", "plugins", "_version"},
    "topk": {
        "runtime",
        "space",
        "search",
        "storage",
        "data",
        "config",
        "errors",
        "plugins",
        "_version",
    },
    "analysis": {"storage", "space", "config", "errors", "plugins", "_version"},
}


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_import_ckptnas_loads_no_heavy_library() -> None:
    loaded = top_level(loaded_after("import ckptnas"))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_building_the_command_line_loads_no_heavy_library() -> None:
    # Every command group registers its commands lightly; heavy imports wait in the handlers.
    loaded = top_level(loaded_after("from ckptnas.cli import build_parser\nbuild_parser()"))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize("subpackage", sorted(ALLOWED))
def test_subpackage_imports_only_its_layers(subpackage: str) -> None:
    # Every public name resolved, so every module of the subpackage is imported.
    code = f"import ckptnas.{subpackage} as p\nfor name in p.__all__:\n    getattr(p, name)"
    parts = {m.split(".")[1] for m in loaded_after(code) if m.startswith("ckptnas.")}
    assert parts - {subpackage} <= ALLOWED[subpackage]


def test_storage_source_names_no_layer_above_it() -> None:
    """Storage owns its records: no import of the layers above, not even for type checking.

    Imports under ``TYPE_CHECKING`` are invisible at run time, so the source itself is read.
    """
    above = ("runtime", "search", "topk", "analysis", "cli")
    pattern = re.compile(rf"^\s*(from|import)\s+ckptnas\.({'|'.join(above)})\b", re.MULTILINE)
    storage = Path(ckptnas.__file__).parent / "storage"
    found = [
        f"{path.name}: {match.group(0).strip()}"
        for path in sorted(storage.glob("*.py*"))
        for match in pattern.finditer(path.read_text())
    ]
    assert not found, found


def test_every_public_name_resolves() -> None:
    for name in ckptnas.__all__:
        module = getattr(ckptnas, name)
        for sub in getattr(module, "__all__", ()):
            assert getattr(module, sub) is not None, f"ckptnas.{name}.{sub}"


def test_reading_a_run_needs_no_torch(tmp_path: Path) -> None:
    """``ckptnas summary`` and ``ckptnas lineage`` work on a login node without torch."""
    run = _recorded_run(tmp_path)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "sys.modules['optuna'] = None  # nor optuna\n"
        "from ckptnas.cli import main\n"
        f"assert main(['lineage', {str(run)!r}]) == 0\n"
        f"assert main(['lineage', {str(run)!r}, '--candidate', '2']) == 0\n"
        f"assert main(['summary', {str(run)!r}]) == 0"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 <- 1" in done.stdout
    assert "top 2 candidates" in done.stdout


def _recorded_run(run_dir: Path) -> Path:
    """A run directory with two finished candidates, the second warm-started from the first."""
    from ckptnas.search import TransferPlan
    from ckptnas.storage import LineageRegistry, ResultsWriter

    plan = TransferPlan(donor=1, tensors=("head.weight",), prefix_length=1, n_params=3)
    with LineageRegistry(run_dir) as registry:
        registry.set_meta_many({"space": json.dumps({"node_names": ["a", "b"]}), "metric": "r2"})
        for cid, p in ((1, TransferPlan()), (2, plan)):
            registry.add_candidate((0, cid), p, 10)
            registry.record(one_epoch_result(cid, 0.5 * cid, p))
        ResultsWriter(run_dir, registry, 1).flush()
    return run_dir
