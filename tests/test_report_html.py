"""The HTML report: one self-contained page per run, and its live rewrites during a search."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import html
import io
import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client
from helpers import one_epoch_result, recorded_search

from ckptnas.analysis import LiveReport, RunSnapshot, html_report, write_html_report
from ckptnas.cli import main
from ckptnas.config import Config
from ckptnas.runtime import Experiment
from ckptnas.search import SCRATCH
from ckptnas.space import ResolvedSpace, SearchSpace, _resolved
from ckptnas.storage import LineageRegistry

SECTIONS = ("candidates", "objectives", "curves", "lineage", "donors", "timeline")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 recorded candidates: two failed, one still in flight."""
    return recorded_search(
        tmp_path_factory.mktemp("run"), 60, seed=2, failed=(9, 30), pending=(60,)
    )


@pytest.fixture(scope="module")
def page(run: Path) -> str:
    return write_html_report(run).read_text(encoding="utf-8")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _decoded(value: Any) -> list[Any]:
    """A column as bokeh serialises it: a list, or a typed array in base64, maybe gzipped."""
    if isinstance(value, dict) and value.get("type") == "ndarray":
        raw = base64.b64decode(value["array"]["data"])
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return np.frombuffer(raw, dtype=value["dtype"]).tolist()
    return list(value)


def named_columns(page: str, name: str) -> dict[str, list[Any]]:
    """The columns of the data source called ``name`` in the page's embedded bokeh document."""
    found = re.search(
        r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', page, re.S
    )
    assert found, "no embedded bokeh document"
    document = json.loads(html.unescape(found.group(1)))
    sources = [
        node
        for node in _walk(document)
        if node.get("name") == "ColumnDataSource" and node["attributes"].get("name") == name
    ]
    assert len(sources) == 1, f"{len(sources)} data sources named {name!r}"
    entries = sources[0]["attributes"]["data"]["entries"]
    return {key: _decoded(value) for key, value in entries}


def _reloads(page: str) -> bool:
    """Whether the page follows a run: its reload timer and the box that stops it."""
    return '<input type="checkbox" id="follow" checked>' in page and "location.reload()" in page


class _Resources(HTMLParser):
    """The ``src`` of every element, and the ``href`` of every ``<link>``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key == "src" or (tag == "link" and key == "href"):
                self.found.append(f"<{tag} {key}={value}>")


def _loaded_resources(page: str) -> list[str]:
    parser = _Resources()
    parser.feed(page)
    return parser.found


def test_page_is_one_file_that_needs_no_network(run: Path, page: str) -> None:
    assert (run / "report.html").is_file()
    # No element loads anything: every script and style is inline (script bodies are not
    # parsed as HTML, so BokehJS's own strings do not count).
    assert _loaded_resources(page) == []
    assert "/* BEGIN bokeh.min.js */" in page  # BokehJS is in the file
    assert "/* BEGIN bokeh-tables.min.js */" in page  # and the table's part of it


def test_table_and_tree_hold_every_candidate_of_the_registry(run: Path, page: str) -> None:
    with LineageRegistry(run, readonly=True) as registry:
        records = registry.candidates()
    table = named_columns(page, "candidates")
    tree = named_columns(page, "lineage")
    assert table["id"] == tree["id"] == [r.id for r in records]
    assert tree["parent"] == [-1 if r.parent is None else r.parent for r in records]
    assert table["status"] == [str(r.status) for r in records]
    np.testing.assert_allclose(table["objective"], [r.objective for r in records])
    np.testing.assert_allclose(table["inherited"], [r.frac_params_transferred for r in records])
    assert table["worker"] == [r.worker for r in records]
    assert all(arch.startswith("branches.cell.0=") for arch in table["arch"])


def test_page_shows_the_run_its_counts_and_every_part(page: str) -> None:
    assert "60 of 60 registered: 57 ok, 2 failed, 1 pending" in page
    assert "stopped with 1 candidate in flight" in page
    assert "policy lcp, not frozen" in page and "evolution (population 4, sample 2)" in page
    assert "[experiment]" in page and "max_candidates = 60" in page  # the configuration
    assert "held-out test rows</th><td>20% of the rows, which nothing of the search sees" in page
    assert "held-out test r2 of the fully trained models</th><td>not measured yet" in page
    for section in SECTIONS:
        assert f'<h2 id="{section}">' in page
    assert "random first population" in page and "evolved" in page
    assert "warm vs scratch within this stage only" in page
    assert not _reloads(page)  # nothing will rewrite a stopped run's page


def test_live_page_reloads_itself_and_links_the_dashboard(run: Path) -> None:
    with LineageRegistry(run, readonly=True) as registry:
        snap = RunSnapshot.read(registry)
    live = html_report(snap, refresh=7, dashboard_link="http://127.0.0.1:8787/status")
    assert _reloads(live) and "}, 7000);" in live
    assert "running: 1 candidate in flight" in live
    assert 'href="http://127.0.0.1:8787/status"' in live
    finished = html_report(snap, dashboard_link="http://127.0.0.1:8787/status")
    assert not _reloads(finished) and 'href="http://127.0.0.1:8787/status"' not in finished


def test_stages_follow_the_population_rule(run: Path) -> None:
    # Candidate i is submitted at second i and finishes at i + 2.6: at submission, the ok
    # candidates up to i - 3 have finished. With a population of 4, candidates 1-6 are drawn
    # at random; the rest are evolved. The pending candidate 60 is in neither.
    with LineageRegistry(run, readonly=True) as registry:
        stages = RunSnapshot.read(registry).stages()
    assert [s.candidates for s in stages] == [tuple(range(1, 7)), tuple(range(7, 60))]


def _stages_under(run: Path, copy: Path, config: Config) -> list[tuple[int, ...]]:
    """The stages of a copy of ``run`` that records ``config`` as its configuration."""
    shutil.copytree(run, copy)
    with LineageRegistry(copy) as registry:
        registry.set_meta("config", config.to_toml())
        return [s.candidates for s in RunSnapshot.read(registry).stages()]


@pytest.mark.parametrize(
    ("search", "random_until"),
    [
        # TPE learns once n_startup_trials have finished: at candidate 8's submission, 1-5
        ({"sampler": "tpe", "sampler_options": {"n_startup_trials": 5}}, 7),
        # Optuna's own default, 10 trials: failed candidate 9 does not count, so 1-8, 10, 11
        ({"sampler": "tpe"}, 13),
        # NSGA-II breeds from its second generation: the first population_size submitted
        ({"sampler": "nsga2", "sampler_options": {"population_size": 8}}, 8),
    ],
)
def test_stages_follow_each_samplers_random_start(
    run: Path, tmp_path: Path, tiny_config: Config, search: dict[str, Any], random_until: int
) -> None:
    config = tiny_config.replace("search", strategy="optuna", **search)
    assert _stages_under(run, tmp_path / "run", config) == [
        tuple(range(1, random_until + 1)),
        tuple(range(random_until + 1, 60)),
    ]


def test_stages_are_read_from_the_tags_the_strategy_recorded(
    run: Path, tmp_path: Path, tiny_config: Config
) -> None:
    # Tagged, the stages are what the strategy said, not what the times suggest; candidates
    # written before tags were recorded (here 1-3) still go by the population rule.
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with contextlib.closing(sqlite3.connect(copy / "lineage.sqlite")) as db, db:
        db.execute("UPDATE candidates SET stage = 'initial population' WHERE id BETWEEN 4 AND 9")
        db.execute("UPDATE candidates SET stage = 'mutation' WHERE id > 9")
        db.execute("UPDATE candidates SET stage = 'by hand' WHERE id = 59")
    with LineageRegistry(copy, readonly=True) as registry:
        stages = RunSnapshot.read(registry).stages()
    assert [(s.name.split(" (")[0], s.candidates) for s in stages] == [
        ("random first population", tuple(range(1, 10))),
        ("evolved: mutations of the population's best", tuple(range(10, 59))),
        ("by hand", (59,)),
    ]


@pytest.mark.parametrize(
    "search", [{"strategy": "random"}, {"strategy": "optuna", "sampler": "random"}]
)
def test_a_search_that_only_draws_at_random_is_one_stage(
    run: Path, tmp_path: Path, tiny_config: Config, search: dict[str, Any]
) -> None:
    config = tiny_config.replace("search", **search)
    assert _stages_under(run, tmp_path / "run", config) == [tuple(range(1, 60))]


def test_table_shows_hyperparameters_latency_and_candidates_being_continued(
    tmp_path: Path,
) -> None:
    with LineageRegistry(tmp_path) as registry:
        # promoted by successive halving: to train on to 3 epochs, 1 trained so far
        a = registry.add_candidate(
            (0, 1), SCRATCH, 10, hyperparameters={"lr": 0.01}, target_epochs=3
        )
        registry.record(dataclasses.replace(one_epoch_result(a), latency=0.002))
        b = registry.add_candidate((1, 1), SCRATCH, 10, target_epochs=1)
        registry.record(one_epoch_result(b))
        snap = RunSnapshot.read(registry)
    table = named_columns(html_report(snap), "candidates")
    assert table["status"] == ["continuing", "ok"]
    assert table["epochs"] == [1, 1]
    assert table["hyperparameters"] == ["lr=0.01", ""]
    np.testing.assert_allclose(table["latency_ms"], [2.0, np.nan])


def test_table_leaves_out_what_the_run_did_not_search_or_measure(run: Path, page: str) -> None:
    assert not {"hyperparameters", "latency_ms"} & set(named_columns(page, "candidates"))


@pytest.mark.parametrize("n_pending", [0, 2])
def test_page_of_a_run_with_nothing_finished(tmp_path: Path, n_pending: int) -> None:
    with LineageRegistry(tmp_path) as registry:
        for k in range(n_pending):
            registry.add_candidate((0, k), SCRATCH, 10)
        snap = RunSnapshot.read(registry)
    page = html_report(snap, refresh=5)
    assert "No candidate has finished successfully yet." in page
    assert f"{n_pending} of {n_pending} registered" in page
    assert len(named_columns(page, "candidates")["id"]) == n_pending


def test_cli_report_html(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run), "--html", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"wrote {tmp_path / 'report.html'}")
    assert "top 5 candidates" in out
    assert named_columns((tmp_path / "report.html").read_text(), "lineage")["id"][-1] == 60
    assert not (tmp_path / "lineage_tree.png").exists()  # one page, no PNGs


def _inode(path: Path) -> int:
    return path.stat().st_ino  # a rewrite renames a new file into place: a new inode


def test_live_report_throttles_rewrites_while_running(run: Path, tmp_path: Path) -> None:
    page = tmp_path / "live.html"
    notice = io.StringIO()
    report = LiveReport(run, page, refresh=3, share=0.01, notice=notice)
    with LineageRegistry(run, readonly=True) as registry:
        report.run_started(registry, "http://127.0.0.1:8787/status")
        first = _inode(page)
        assert _reloads(page.read_text())
        # Rebuilt at most once every 100 build times: too soon after the first page.
        assert report.build_seconds > 0
        report.results_written(registry, running=True)
        assert _inode(page) == first
        # The run's last write is never skipped, and the page stops reloading.
        report.results_written(registry, running=False)
        assert _inode(page) != first
        assert not _reloads(page.read_text())
    assert notice.getvalue().splitlines() == [
        f"report: {page.resolve().as_uri()}",
        "Dask dashboard: http://127.0.0.1:8787/status",
    ]


def test_a_live_page_past_its_limit_draws_the_best_and_the_latest_and_says_so(
    run: Path, tmp_path: Path
) -> None:
    page = tmp_path / "live.html"
    report = LiveReport(run, page, limit=20)
    with LineageRegistry(run, readonly=True) as registry:
        report.run_started(registry, "")
        everyone = registry.candidates()
    text = page.read_text(encoding="utf-8")
    ok = sorted((r for r in everyone if r.status == "ok"), key=lambda r: (-r.objective, r.id))
    expected = sorted({r.id for r in ok[:1]} | {r.id for r in everyone[-19:]})
    table = named_columns(text, "candidates")
    assert table["id"] == named_columns(text, "lineage")["id"] == expected
    # The counts are the whole run's; the page names what it holds and where the rest is.
    assert "60 of 60 registered: 57 ok, 2 failed, 1 pending" in text
    assert "the best and the latest 20 of the 60 candidates" in text
    assert f"{ok[0].objective:.4f} (candidate {ok[0].id})" in text  # the best of all
    assert "lineage (of the candidates shown)" in text
    # Under its limit, a page holds every candidate, and says nothing of one.
    report = LiveReport(run, page, limit=60)
    with LineageRegistry(run, readonly=True) as registry:
        report.run_started(registry, "")
    text = page.read_text(encoding="utf-8")
    assert len(named_columns(text, "candidates")["id"]) == 60
    assert "of the candidates shown" not in text


class _Recorder:
    """A listener that notes every call, and what the page said at that moment."""

    def __init__(self, page: Path) -> None:
        self.page = page
        self.calls: list[tuple[str, bool, str]] = []

    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        self.calls.append(("started", True, self.page.read_text()))

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        self.calls.append(("written", running, self.page.read_text()))


class _Broken:
    def run_started(self, registry: LineageRegistry, dashboard_link: str) -> None:
        raise OSError("disk full")

    def results_written(self, registry: LineageRegistry, running: bool) -> None:
        raise ValueError("cannot draw")


def test_run_rewrites_its_report_with_the_results_and_survives_a_broken_listener(
    tmp_path: Path, tiny_config: Config, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    page = tmp_path / "report.html"
    recorder = _Recorder(page)
    # share=1: rebuilt whenever results.nc is, once as long as the last build has passed
    listeners = [_Broken(), LiveReport(tmp_path, share=1.0), recorder]
    with caplog.at_level(logging.WARNING, logger="ckptnas"):
        ds = Experiment(tiny_config, tmp_path, progress=False, listeners=listeners).run(client)
    assert ds.sizes["candidate"] == 8
    kinds = [(kind, running) for kind, running, _ in recorder.calls]
    assert kinds[0] == ("started", True) and kinds[-1] == ("written", False)
    assert ("written", True) in kinds  # rewritten while the search was going on
    during = [text for kind, running, text in recorder.calls if running]
    assert all(_reloads(text) for text in during)
    counts = [
        int(re.search(r"(\d+) of 8 registered", text).group(1)) for _, _, text in recorder.calls
    ]
    assert counts == sorted(counts) and counts[-1] == 8
    final = page.read_text()
    assert not _reloads(final) and 'id="run-state">finished<' in final
    assert len(named_columns(final, "candidates")["id"]) == 8
    messages = [r.getMessage() for r in caplog.records]
    assert any("_Broken.run_started failed: OSError: disk full" in m for m in messages)
    assert any("_Broken.results_written failed: ValueError: cannot draw" in m for m in messages)


class _OwnSpace:
    """A user's space (the dense one behind an object of its own): recorded pickled."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return self.space.sample(rng)

    def mutate(self, arch: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        return self.space.mutate(arch, rng)

    def build(self, arch: tuple[int, ...]) -> Any:
        return self.space.build(arch)

    def describe(self, arch: tuple[int, ...]) -> str:
        return f"own: {self.space.describe(arch)}"


def test_a_space_recorded_as_code_is_described_only_when_trusted(
    tmp_path: Path, combo_space: SearchSpace, rng: np.random.Generator
) -> None:
    arch = combo_space.sample(rng)
    with LineageRegistry(tmp_path) as registry:
        recorded = ResolvedSpace(_OwnSpace(combo_space)).to_dict()
        assert recorded["kind"] == "pickled"
        registry.set_meta("space", json.dumps(recorded))
        cid = registry.add_candidate(arch, SCRATCH, 10)
        _resolved.REBUILT.clear()  # read as another process would read a received run
        # unpickling the space would run code from the run directory
        assert RunSnapshot.read(registry).described == {cid: str(arch)}
        trusted = RunSnapshot.read(registry, trust_code=True).described
    assert trusted == {cid: f"own: {combo_space.describe(arch)}"}
