"""The package's layout as users and other subpackages rely on it: light imports, clear layers."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import one_epoch_result

import ckptnas

HEAVY = ("torch", "sklearn", "matplotlib", "distributed", "scipy", "optuna")

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"

#: Always importable: the registries' machinery, the exceptions, the version.
BOTTOM = {"plugins", "errors", "_version"}


def documented_layers() -> dict[str, set[str]]:
    """The layer table of docs/architecture.md: each layer to the layers it may import."""
    layers = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`\w+`", cells[0]) and cells[3].startswith("`"):
            layers[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[3]))
    return layers


#: What each subpackage may import of ckptnas (besides itself and the bottom modules).
ALLOWED = documented_layers()


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
    assert parts - {subpackage} - BOTTOM <= ALLOWED[subpackage]


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


def test_the_documented_layers_are_every_subpackage() -> None:
    packages = {p.parent.name for p in Path(ckptnas.__file__).parent.glob("*/__init__.py")}
    assert set(ALLOWED) == packages - {"cli"}, "docs/architecture.md's layer table is stale"


@pytest.mark.parametrize("subpackage", sorted(ALLOWED))
def test_each_subpackage_docstring_says_what_the_layer_table_says(subpackage: str) -> None:
    module = __import__(f"ckptnas.{subpackage}", fromlist=["__doc__"])
    doc = module.__doc__ or ""
    said = doc[doc.index("May import:") :].split(".\n\n")[0]
    named = set(re.findall(r":mod:`ckptnas\.(\w+)`", said))
    assert named == ALLOWED[subpackage], f"ckptnas.{subpackage}'s docstring: {sorted(named)}"


def _imports(path: Path, package: str) -> set[str]:
    """The ckptnas modules a module imports anywhere: at import, in a function, for typing."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found |= {f"{base}.{a.name}" for a in node.names} | {base}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Not even through an import deferred into a function or kept for type checking."""
    root = Path(ckptnas.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {
        name: {
            m
            for m in _imports(path, name if path.stem == "__init__" else name.rpartition(".")[0])
            if m in modules and m != name
        }
        for name, path in modules.items()
    }
    cycle = _a_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (module to the modules it imports), or ``None``."""
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start, [start])):
            return found
    return None


def test_every_module_is_on_the_architecture_page() -> None:
    """Each module of a subpackage is named in that subpackage's row of the modules table."""
    rows = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `ckptnas/(\w+)/` \|", line)
        if found:
            rows[found.group(1)] = line
    root = Path(ckptnas.__file__).parent
    missing = [
        f"{path.parent.name}/{path.name}"
        for path in sorted(root.glob("*/_*.py"))
        if path.name != "__init__.py" and f"`{path.name}`" not in rows.get(path.parent.name, "")
    ]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_modules_and_functions_stay_small() -> None:
    """A module past 400 lines or a function past 60 is a sign to split it (docs/architecture)."""
    too_long = []
    for path in sorted(Path(ckptnas.__file__).parent.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}::{node.name}: {length} lines")
    assert not too_long, too_long


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
