"""The report in a real browser: Debian's Chromium, driven by Selenium.

The page must load with no error in the console, show one table row and one lineage mark per
candidate, trace a clicked candidate's ancestry, keep it across the reloads of a live page, and
stop reloading when asked. A full-page screenshot of each page is saved in
``$CKPTNAS_SCREENSHOT_DIR`` (a test's temporary directory when unset) for a person to look at.
``.ci/run`` installs ``chromium`` and ``chromium-driver`` with apt where they are missing; the
tests are skipped, saying why, only where that was impossible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client
from helpers import recorded_search

from ckptnas.analysis import RunSnapshot, html_report, write_html_report
from ckptnas.runtime import Experiment
from ckptnas.storage import LineageRegistry

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Seconds a page may take to draw (BokehJS is 2 MB of script, on a shared 2-core machine).
DRAW_TIMEOUT = 60

# Every element matching a CSS selector, inside the shadow roots bokeh draws into as well.
_QUERY_ALL_JS = """
const found = [];
const visit = (root) => {
  root.querySelectorAll(arguments[0]).forEach((e) => found.push(e));
  root.querySelectorAll("*").forEach((e) => { if (e.shadowRoot) visit(e.shadowRoot); });
};
visit(document);
return found;
"""

# Once the document is drawn: its table's and tree's sizes, and the marks the tree drew.
_DRAWN_JS = """
if (!window.Bokeh || Bokeh.documents.length === 0) return null;
const doc = Bokeh.documents[0];
const marks = doc.get_model_by_name("lineage_marks");
const view = marks ? Bokeh.index.get_one(marks) : null;
if (!view || !view.has_finished()) return null;
return {
  table: doc.get_model_by_name("candidates").data.id.length,
  tree: doc.get_model_by_name("lineage").data.id.length,
  drawn: Array.from(view.glyph.sx).filter(Number.isFinite).length,
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, collecting the console's messages."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser tests need selenium (pip install -e '.[test]')"
    )
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(
            f"the browser tests need Debian's chromium and chromium-driver, and {missing} is "
            "missing (apt-get install chromium chromium-driver; .ci/run does it)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CKPTNAS_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 recorded candidates, two failed and one in flight: a stopped run's page."""
    run = recorded_search(tmp_path_factory.mktemp("recorded"), 60, failed=(9, 30), pending=(60,))
    write_html_report(run)
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Path:
    """A real search of eight candidates, trained on the session's cluster."""
    from conftest import TINY

    from ckptnas.config import config_from_dict

    run = tmp_path_factory.mktemp("trained")
    Experiment(config_from_dict(TINY), run, progress=False).run(client)
    write_html_report(run)
    return run


def _wait(browser: Any, condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DRAW_TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {DRAW_TIMEOUT} s")


def _open(browser: Any, page: Path) -> dict[str, int]:
    """Load a page and wait until its table has rows and its tree is drawn."""
    browser.get_log("browser")  # forget what earlier pages logged
    browser.get(page.resolve().as_uri())
    return _drawn(browser)


def _drawn(browser: Any) -> dict[str, int]:
    sizes: dict[str, int] = _wait(
        browser,
        lambda: browser.execute_script(_DRAWN_JS) if _rows(browser) else None,
        "the page was not drawn",
    )
    return sizes


def _rows(browser: Any) -> list[Any]:
    rows: list[Any] = browser.execute_script(_QUERY_ALL_JS, ".slick-row")
    return rows


def _console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _screenshot(browser: Any, folder: Path, name: str) -> Path:
    """The whole page: the window is grown to the page's height until that height holds."""
    height = 0
    for _ in range(4):  # bokeh lays the page out again at each new window size
        now = browser.execute_script("return document.documentElement.scrollHeight")
        if now == height:
            break
        height = now
        browser.set_window_size(1400, height + 120)
        time.sleep(0.5)
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1000)
    return path


def _registry_ids(run: Path) -> list[int]:
    with LineageRegistry(run, readonly=True) as registry:
        return [r.id for r in registry.candidates()]


@pytest.mark.parametrize("which", ["recorded", "trained"])
def test_page_loads_cleanly_with_a_row_and_a_mark_per_candidate(
    browser: Any, screenshots: Path, request: pytest.FixtureRequest, which: str
) -> None:
    run: Path = request.getfixturevalue(which)
    n = len(_registry_ids(run))
    sizes = _open(browser, run / "report.html")
    assert sizes == {"table": n, "tree": n, "drawn": n}
    assert _console_errors(browser) == []
    # The table draws only the rows in view (SlickGrid); the first is candidate 1.
    rows = _rows(browser)
    assert 0 < len(rows) <= n
    cells = browser.execute_script("return arguments[0].innerText", rows[0]).split("\n")
    assert cells[0].strip() == "1" and "branches.cell.0=" in cells[1]
    # Every figure was drawn: a canvas for each of the eight plots.
    assert len(browser.execute_script(_QUERY_ALL_JS, "canvas")) >= 8
    shot = _screenshot(browser, screenshots, f"report-{which}")
    assert shot.stat().st_size > 50_000


def test_clicking_a_candidate_traces_its_ancestry_and_survives_a_reload(
    browser: Any, recorded: Path
) -> None:
    _open(browser, recorded / "report.html")
    with LineageRegistry(recorded, readonly=True) as registry:
        deepest = max(registry.candidates(), key=lambda r: (len(registry.ancestors(r.id)), r.id))
        chain = [deepest.id, *registry.ancestors(deepest.id)]
    select = """
      const nodes = Bokeh.documents[0].get_model_by_name("lineage");
      nodes.selected.indices = [Array.from(nodes.data.id).indexOf(arguments[0])];
    """
    browser.execute_script(select, deepest.id)

    def traced() -> Any:
        return browser.execute_script(
            """
            const doc = Bokeh.documents[0];
            const panel = doc.get_model_by_name("ancestry_panel").text;
            return [panel, doc.get_model_by_name("ancestry_path").data.xs.length,
                    doc.get_model_by_name("lineage").selected.indices];
            """
        )

    panel, n_edges, _ = traced()
    assert f"Ancestry of candidate {deepest.id}" in panel
    assert panel.count("<tr><td>") == len(chain)  # a row per step, down to scratch
    assert "trained from scratch" in panel
    assert n_edges == len(chain) - 1
    browser.refresh()  # a live page reloads: the chosen candidate stays chosen
    _drawn(browser)
    panel, n_edges, _ = _wait(browser, lambda: traced()[1] and traced(), "selection not kept")
    assert f"Ancestry of candidate {deepest.id}" in panel and n_edges == len(chain) - 1
    assert _console_errors(browser) == []
    browser.execute_script("sessionStorage.clear()")


def test_live_page_reloads_until_told_to_stop(
    browser: Any, recorded: Path, tmp_path: Path, screenshots: Path
) -> None:
    with LineageRegistry(recorded, readonly=True) as registry:
        snap = RunSnapshot.read(registry)
    page = tmp_path / "live.html"
    page.write_text(html_report(snap, refresh=1.5, dashboard_link="http://127.0.0.1:1/status"))
    _open(browser, page)
    browser.execute_script("window.scrollTo(0, 1200); window.notReloaded = true")
    _wait(browser, lambda: browser.execute_script("return !window.notReloaded"), "no reload")
    _drawn(browser)
    # where the reader was, once the figures are drawn again
    _wait(browser, lambda: browser.execute_script("return window.scrollY") == 1200, "scrolled")
    browser.execute_script(
        "const box = document.getElementById('follow'); box.click(); window.notReloaded = true"
    )
    _screenshot(browser, screenshots, "report-live")
    time.sleep(3)  # two reload periods
    assert browser.execute_script("return window.notReloaded === true")
    assert not browser.execute_script("return document.getElementById('follow').checked")
    assert _console_errors(browser) == []
    browser.execute_script("sessionStorage.clear()")
