"""``[transfer] donor_runs``: a search warm-started from an earlier run's candidates."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client

from ckptnas.analysis import write_html_report
from ckptnas.config import Config, config_from_dict, load_config
from ckptnas.errors import ConfigError
from ckptnas.runtime import Experiment, load_model
from ckptnas.search import Planner
from ckptnas.space import SearchSpace
from ckptnas.storage import CandidateStatus, LineageRegistry, SearchStage
from tests.conftest import TINY


def _snapshot(run: Path) -> dict[str, str]:
    """Every path under ``run``, with the digest of each file's bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(run.rglob("*"))
    }


@pytest.fixture(scope="module")
def donor_run(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    run = tmp_path_factory.mktemp("donors") / "last-week"
    Experiment(config_from_dict(TINY), run, progress=False).run(client)
    return run


def _with_donors(config: Config, *runs: Path, candidates: int = 6) -> Config:
    config = config.replace("experiment", max_candidates=candidates)
    return config.replace("transfer", donor_runs=[str(run) for run in runs])


def test_first_candidates_warm_start_from_the_donor_run_left_as_it_was(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    before = _snapshot(donor_run)
    run = tmp_path / "this-week"
    Experiment(_with_donors(tiny_config, donor_run), run, progress=False).run(client)

    assert _snapshot(donor_run) == before  # byte for byte, and no file added
    with LineageRegistry(run, readonly=True) as registry:
        records = registry.candidates()
        first = records[: tiny_config.search.population_size]
        assert {r.stage for r in first} == {SearchStage.SEEDED}
        for r in first:
            assert r.status == CandidateStatus.OK
            assert r.parent_run == str(donor_run)
            assert r.parent is not None and r.frac_params_transferred > 0
            assert r.parent_label == f"last-week:{r.parent}"
            assert registry.parent(r.id) is None  # a root of this run's forest
        assert registry.get_meta("donor_runs")
    model = load_model(run, first[0].id)
    assert model is not None

    printed = _ckptnas("lineage", run)
    assert f"from last-week:{first[0].parent}" in printed.stdout
    ancestry = _ckptnas("lineage", run, "--candidate", first[0].id)
    assert f"from last-week:{first[0].parent}" in ancestry.stdout
    page = write_html_report(run).read_text()
    assert "parent_run" in page and "last-week" in page


def test_a_missing_donor_run_is_refused_in_one_line_before_any_candidate(
    tmp_path: Path, client: Client, tiny_config: Config
) -> None:
    run = tmp_path / "run"
    config = _with_donors(tiny_config, tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="does not exist") as info:
        Experiment(config, run, progress=False).run(client)
    assert "\n" not in str(info.value)
    assert not run.exists()


def test_a_directory_that_is_no_search_run_is_refused(
    tmp_path: Path, client: Client, tiny_config: Config
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    config = _with_donors(tiny_config, tmp_path / "notes")
    with pytest.raises(ConfigError, match="not a ckptnas search run"):
        Experiment(config, tmp_path / "run", progress=False).run(client)


def test_a_donor_run_changed_since_the_run_started_is_refused_on_resume(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    donor = tmp_path / "copy"
    _copy(donor_run, donor)
    run = tmp_path / "run"
    Experiment(_with_donors(tiny_config, donor, candidates=4), run, progress=False).run(client)
    db = sqlite3.connect(donor / "lineage.sqlite")  # someone rewrote a checkpoint
    with db:
        db.execute("UPDATE candidates SET checkpoint_digest = 'x' WHERE id = 1")
    db.close()
    config = _with_donors(tiny_config, donor, candidates=6)
    with pytest.raises(ConfigError, match="changed since this run started") as info:
        Experiment(config, run, progress=False, resume=True).run(client)
    assert "\n" not in str(info.value)
    with LineageRegistry(run, readonly=True) as registry:
        assert len(registry) == 4


def _copy(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        out = target / path.relative_to(source)
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(path.read_bytes())


def _ckptnas(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ckptnas", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=True)


def test_relative_donor_runs_are_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    path = tmp_path / "experiments" / "again.toml"
    path.write_text('[transfer]\ndonor_runs = ["../runs/last-week"]\n')
    assert load_config(path).transfer.donor_runs == [str(tmp_path / "runs" / "last-week")]


def test_donors_of_earlier_runs_outlive_a_rebuild_of_the_runs_own() -> None:
    space = SearchSpace((("x", 4),), output_size=1, num_nodes=2, input_nodes=0)
    planner = Planner("lcp", space)
    key = planner.add_foreign((1, 0, 1, 0), 0.5)
    assert key < 0
    planner.rebuild([])
    assert planner.plan((1, 0, 2, 0)).donor == key
    planner.discard(key)
    planner.rebuild([])
    assert not planner.plan((1, 0, 2, 0)).is_warm


def test_a_donor_run_a_client_still_has_open_is_refused(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    donor = tmp_path / "open"
    _copy(donor_run, donor)
    with LineageRegistry(donor) as registry:  # a client writing into it now
        registry.set_meta("note", "still running")
        config = _with_donors(tiny_config, donor)
        with pytest.raises(ConfigError, match="still open"):
            Experiment(config, tmp_path / "run", progress=False).run(client)


def _best_archs(run: Path, n: int) -> list[tuple[int, ...]]:
    """The ``n`` best distinct architectures of a finished run, best first."""
    with LineageRegistry(run, readonly=True) as registry:
        ok = registry.candidates(CandidateStatus.OK)
    ranked = sorted(ok, key=lambda r: -r.objective)
    return list(dict.fromkeys(r.arch for r in ranked))[:n]


def test_the_first_population_is_seeded_from_the_donor_runs_best_whatever_the_seed(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    n = tiny_config.search.population_size
    config = _with_donors(tiny_config, donor_run, candidates=n)
    config = config.replace("experiment", seed=tiny_config.experiment.seed + 2)
    run = tmp_path / "other-seed"
    Experiment(config, run, progress=False).run(client)
    with LineageRegistry(run, readonly=True) as registry:
        first = registry.candidates()
    assert len(first) == n
    assert [r.arch for r in first] == _best_archs(donor_run, n)
    for r in first:
        assert r.stage == SearchStage.SEEDED
        assert r.parent_run == str(donor_run) and r.frac_params_transferred > 0


def test_a_resumed_run_seeds_its_first_population_once(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    n = tiny_config.search.population_size
    config = _with_donors(tiny_config, donor_run, candidates=2).replace("search", strategy="random")
    run = tmp_path / "run"
    Experiment(config, run, progress=False).run(client)
    config = config.replace("experiment", max_candidates=n + 3)
    Experiment(config, run, progress=False, resume=True).run(client)
    with LineageRegistry(run, readonly=True) as registry:
        records = registry.candidates()
    assert [r.stage for r in records] == [SearchStage.SEEDED] * n + [SearchStage.RANDOM] * 3
    assert [r.arch for r in records[:n]] == _best_archs(donor_run, n)


def test_donors_of_another_space_serve_where_their_layers_match(
    tmp_path: Path, client: Client, tiny_config: Config, donor_run: Path
) -> None:
    wider = config_from_dict(TINY | {"space": TINY["space"] | {"units": [8, 16, 32]}})
    config = _with_donors(wider, donor_run, candidates=6).replace("experiment", seed=11)
    run = tmp_path / "wider"
    Experiment(config, run, progress=False).run(client)
    with (
        LineageRegistry(run, readonly=True) as registry,
        LineageRegistry(donor_run, readonly=True, untouched=True) as donors,
    ):
        assert registry.recorded_space() != donors.recorded_space()
        records = registry.candidates()
    warm = [r for r in records if r.parent_run]
    assert len(warm) >= wider.search.population_size
    assert all(r.parent_run == str(donor_run) for r in warm)
    assert all(r.frac_params_transferred > 0 for r in warm)
    assert any(max(r.arch) >= 5 for r in records)  # a choice of 32 units, which [8, 16] lacks


def test_a_donor_run_of_a_space_with_no_layer_in_common_is_refused(
    tmp_path: Path, client: Client, donor_run: Path
) -> None:
    other = config_from_dict(TINY | {"space": TINY["space"] | {"units": [4, 12]}})
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="no trained candidate whose layers match") as info:
        Experiment(_with_donors(other, donor_run), run, progress=False).run(client)
    assert "\n" not in str(info.value)
    assert not run.exists()
