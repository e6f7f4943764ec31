"""Headless Chromium for the report tests: find it (after .ci/run's background install), take a
screenshot the test keeps, and measure the laid-out page.

The pages have no script; the measuring copy gets one appended that writes what the layout gave
(the page's width, every chart's box, every table or wide box wider than its container, the
runner-up table's rows) into a <pre id="measure"> that --dump-dom returns."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

# .ci/run installs Chromium in the background while the suite runs and names a file here that appears
# when that install has ended (its text says how); the browser tests run last and wait for it.
INSTALL_STATUS = "PARAPLAN_CHROMIUM_INSTALL"
INSTALL_WAIT_S = 900
RUNNING_AS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0
FLAGS = [
    "--headless",
    *(["--no-sandbox"] if RUNNING_AS_ROOT else []),  # Chromium refuses to run as root with its sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
WIDTH = 1280
# the screenshots the browser tests keep (PARAPLAN_SCREENSHOTS, else a folder in the temp dir)
SCREENSHOTS = Path(os.environ.get("PARAPLAN_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "paraplan-screenshots")

MEASURE = """<script>
window.addEventListener('load', () => {
  const wide = [];
  for (const e of document.querySelectorAll('table, .wide, figure, section, p, pre')) {
    if (e.scrollWidth > e.clientWidth + 1) wide.push((e.id || e.className || e.tagName) + ' ' +
      e.scrollWidth + '>' + e.clientWidth);
  }
  const charts = [...document.querySelectorAll('svg')].map(s => {
    const b = s.getBoundingClientRect(); return [s.id || s.getAttribute('class') || 'svg', b.width, b.height];
  });
  const result = {page: document.documentElement.scrollWidth, viewport: window.innerWidth, wide: wide,
    charts: charts, runner_up_rows: document.querySelectorAll('#runner-ups table tr').length};
  const pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str:
    """The chromium binary, after any background install has ended; skips with the reason."""
    status = os.environ.get(INSTALL_STATUS)
    outcome = ""
    if status:
        deadline = time.monotonic() + INSTALL_WAIT_S
        while not Path(status).exists() and time.monotonic() < deadline:
            time.sleep(1)
        outcome = (Path(status).read_text(encoding="utf-8").strip() if Path(status).exists()
                   else f"still running after {INSTALL_WAIT_S} s")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it when "
                    "it runs as root or with password-less sudo"
                    + (f"; its install here: {outcome}" if outcome else "")
                    + "): the report was not rendered in a browser")
    return found


def chromium(binary: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def screenshot(binary: str, html: str, name: str, tmp_path: Path, height: int = 2000) -> Path:
    """A screenshot of the page at WIDTH px, kept in SCREENSHOTS/<name>.png."""
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    run = chromium(binary, [f"--screenshot={shot}", f"--window-size={WIDTH},{height}", page.as_uri()],
                   tmp_path)
    if not shot.is_file() and not RUNNING_AS_ROOT and "sandbox" in run.stderr.lower():
        pytest.skip(f"chromium cannot start its sandbox here (run as root to use --no-sandbox): "
                    f"{run.stderr[-500:]}")
    assert shot.is_file(), f"no screenshot; chromium said:\n{run.stderr[-2000:]}"
    return shot


def measure(binary: str, html: str, tmp_path: Path) -> dict[str, Any]:
    """The laid-out page at WIDTH px (see MEASURE)."""
    page = tmp_path / "measured.html"
    page.write_text(html.replace("</body>", MEASURE + "\n</body>"), encoding="utf-8")
    run = chromium(binary, ["--dump-dom", "--virtual-time-budget=5000",
                            f"--window-size={WIDTH},2000", page.as_uri()], tmp_path)
    found = re.search(r'<pre id="measure">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the measuring script did not run; chromium said:\n{run.stderr[-2000:]}"
    text = found.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
    return json.loads(text)


def assert_fits(measured: dict[str, Any]) -> None:
    """No horizontal overflow at WIDTH px: the page is no wider than the window and no table or
    box is wider than its container; every chart has a nonzero size."""
    assert measured["viewport"] == WIDTH, measured["viewport"]
    assert measured["page"] <= WIDTH, f"the page is {measured['page']} px wide at {WIDTH} px"
    assert not measured["wide"], f"wider than their box: {measured['wide']}"
    assert measured["charts"], "no chart"
    for name, width, height in measured["charts"]:
        assert width > 0 and height > 0, (name, width, height)
