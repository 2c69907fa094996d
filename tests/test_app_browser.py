"""The dashboard in a real browser (headless Chromium through Playwright).

Loads the app, waits for the map, checks the console has no errors, moves a control and runs
the plan (the KPI changes), visits every tab (allocation and an A/B comparison run), downloads
the villages' CSV and reads it back, and saves a screenshot of each tab.

The region is the synthetic test region unless ``US_BROWSER_REGION`` names another folder; the
screenshots go to ``US_SCREENSHOTS`` (default: the test's temporary folder). The README's
screenshots are made by this test on the bundled region::

    US_BROWSER_REGION=data/qiannan US_SCREENSHOTS=docs/screenshots \\
        .venv/bin/python -m pytest tests/test_app_browser.py -n 0
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from universal_service import io, runcache

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Generous waits [ms]: a real browser on a loaded 2-core machine; no test asserts a duration.
WAIT_MS = 300_000
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="chromium not installed (apt-get install chromium); .ci/run installs it",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(synth_region_dir, tmp_path):
    region = Path(os.environ.get("US_BROWSER_REGION", synth_region_dir)).resolve()
    port = _free_port()
    env = {
        **os.environ,
        "UNIVERSAL_SERVICE_REGION": str(region),
        runcache.CACHE_ENV: os.environ.get(runcache.CACHE_ENV, str(tmp_path / "cache")),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/", region
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    _idle(page)


def _shown(page, text: str) -> None:
    """Wait for ``text`` to be drawn, then require it on the selected tab (not a hidden one)."""
    found = page.get_by_text(text).first
    found.wait_for(state="attached", timeout=WAIT_MS)
    _idle(page)
    if not found.is_visible():
        matches = page.get_by_text(text)
        selected = [
            t.inner_text()
            for t in page.get_by_role("tab").all()
            if t.get_attribute("aria-selected") == "true"
        ]
        seen = [matches.nth(i).is_visible() for i in range(matches.count())]
        raise AssertionError(f"{text!r} not visible: selected tab {selected}, matches {seen}")


def _idle(page) -> None:
    """Wait until Streamlit has finished the current run (its "Stop" control is gone)."""
    page.wait_for_timeout(1000)
    deadline = time.time() + WAIT_MS / 1000
    while time.time() < deadline and page.get_by_role("button", name="Stop").count():
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)


def test_dashboard_in_a_real_browser(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, region_dir = server
    shots = Path(os.environ.get("US_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    n_villages = len(io.load_region(region_dir).villages)
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--use-gl=swiftshader",
                "--enable-unsafe-swiftshader",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1700}, accept_downloads=True)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Universal-service planner").first.wait_for(timeout=WAIT_MS)
        page.get_by_text("Subsidy needed").first.wait_for(timeout=WAIT_MS)
        page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.wait_for(timeout=WAIT_MS)
        _idle(page)
        page.screenshot(path=str(shots / "service_today.png"))
        cost_before = _metric(page, "NPV cost")

        # move a control: the old results are flagged until the plan is run again
        thumb = page.get_by_role("slider").first
        thumb.focus()
        for _ in range(10):
            thumb.press("ArrowLeft")
        # the slider sends its value after a pause: let every rerun it causes finish
        page.wait_for_timeout(1500)
        _idle(page)
        _idle(page)
        page.get_by_text("Results are for").first.wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name="Run plan").click()
        page.get_by_text("Results are for").first.wait_for(state="detached", timeout=WAIT_MS)
        _idle(page)
        assert page.get_by_text("Results are for").count() == 0, "results stale after Run plan"
        assert _metric(page, "NPV cost") != cost_before

        _tab(page, "Plan")
        page.screenshot(path=str(shots / "plan.png"))
        _tab(page, "Districts")
        page.screenshot(path=str(shots / "districts.png"))

        _tab(page, "Allocation")
        page.get_by_role("button", name="Allocate among operators").click()
        _shown(page, "Cost of fairness")
        _idle(page)
        page.screenshot(path=str(shots / "allocation.png"))

        _tab(page, "Scenarios")
        page.get_by_role("button", name="Compare").click()
        _shown(page, "NPV cost, B")
        _idle(page)
        page.screenshot(path=str(shots / "scenarios.png"))

        _tab(page, "Downloads")
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.get_by_role("button", name="Villages (CSV)").click()
        path = tmp_path / "villages.csv"
        dl.value.save_as(path)
        villages = pd.read_csv(path)
        assert len(villages) == n_villages and {"technology", "subsidy_cny"} <= set(villages)
        page.screenshot(path=str(shots / "downloads.png"))

        # a rerun that flags the results stale keeps the reader on the tab they were reading
        _tab(page, "Allocation")
        thumb.focus()
        thumb.press("ArrowRight")
        page.wait_for_timeout(1500)
        _idle(page)
        _shown(page, "Results are for")
        assert page.get_by_text("Cost of fairness").first.is_visible(), "tabs reset by a rerun"
        browser.close()
    assert not errors, "console errors:\n" + "\n".join(errors)
