"""Time to the dashboard's first map in headless Chromium, from a cold start of the server.

Run: ``python benchmarks/dashboard.py [--region data/qiannan] [--cache DIR] [--runs 3]``;
starts ``streamlit run app.py`` on the region with the run cache in ``DIR`` (default: the user
cache, so a region planned before by ``universal-service plan`` is read from it), opens the
page and prints the seconds from the request to the KPIs and to the first map's canvas, per
run (each run a fresh server, so Streamlit's in-memory caches are empty). RESULTS.md records
the figures. Needs Chromium (``apt-get install chromium``) and Playwright.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(region: Path, cache: str | None) -> tuple[float, float]:
    port = _port()
    env = {**os.environ, "UNIVERSAL_SERVICE_REGION": str(region)}
    if cache:
        env["UNIVERSAL_SERVICE_CACHE"] = cache
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    cmd += ["--server.headless", "true", "--server.port", str(port)]
    cmd += ["--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--use-gl=swiftshader"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.get_by_text("Subsidy needed").first.wait_for(timeout=900_000)
            kpis = time.perf_counter() - t0
            page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.wait_for(timeout=900_000)
            first_map = time.perf_counter() - t0
            browser.close()
        return kpis, first_map
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--region", default=str(ROOT / "data" / "qiannan"))
    ap.add_argument("--cache", default=None, help="run cache folder (default: the user's)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for i in range(args.runs):
        kpis, first_map = one_run(Path(args.region).resolve(), args.cache)
        print(f"run {i + 1}: KPIs after {kpis:.1f} s, first map after {first_map:.1f} s")


if __name__ == "__main__":
    main()
