"""report.html of a plan: self-contained, every section and chart, listed in the manifest; renders in
Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from solver.cli import app
from solver.inputs.condition import build_condition
from solver.planning.planner import solve
from solver.render.plan_page import plan_html
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
SMALL = ROOT / "tests" / "assets" / "good" / "llama8b-l40sx2.yaml"

# a 4-stage pipeline (every chart has something to show, the timeline has 4 x 4 boxes)
PIPELINE = {
    "name": "llama70b-l40s-pp4",
    "model": "llama-3.1-70b",
    "precision": {"weights": "fp8", "kv_cache": "fp8", "activations": "bf16"},
    "hardware": {"gpu": "l40s", "num_nodes": 2, "gpus_per_node": 4},
    "workload": {"input_tokens": 2048, "output_tokens": 512, "max_batch_size": 64},
    "slo": {"tpot_ms": 100},
    "policy": {"pp": [4]},
}


@pytest.fixture(scope="module")
def pipeline_report() -> tuple[str, object]:
    condition = build_condition(PIPELINE, "<test>", "pp4")
    solution = solve(condition)
    assert solution.plan.parallelism.pp == 4
    return plan_html(condition, solution), solution.plan


def test_plan_report_is_self_contained(pipeline_report) -> None:
    html, _ = pipeline_report
    assert html.startswith("<!DOCTYPE html>")
    lowered = html.lower()
    for forbidden in ("<script", "<link", "<img", "@import", "src=", "url(http"):
        assert forbidden not in lowered, forbidden
    # the only absolute URL is the SVG namespace, which browsers never fetch
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_plan_report_has_summary_constraints_balance_and_timeline(pipeline_report) -> None:
    html, plan = pipeline_report
    for section in (
        'id="summary"',
        'id="constraints"',
        'id="balance"',
        'id="timeline"',
        'id="stages"',
        'id="condition"',
        'id="solver"',
    ):
        assert section in html, section
    assert html.count("<svg") == 6  # prefill/decode compute, memory, prefill/decode comm, timeline
    assert "chart-timeline" in html and "chart-bars" in html
    for check in ("gpu_count.available", "memory.stage0"):
        assert check in html
    # the timeline draws every (stage, micro-batch) box with its tooltip
    boxes = re.findall(r"<title>stage (\d+), micro-batch (\d+):", html)
    assert len(boxes) == plan.parallelism.pp * plan.microbatches
    # one bar per GPU on the compute chart (hover text names the GPU and its stage)
    assert (
        len(re.findall(r"<title>GPU \d+, stage \d+: [^<]* ms</title>", html)) >= 2 * plan.gpus.used
    )


def test_solve_writes_report_html_listed_in_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    result = CliRunner().invoke(app, ["solve", str(SMALL), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "Hard constraints" in html
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any(Path(p).name == "report.html" for p in manifest["files"])


# ---- headless Chromium ---------------------------------------------------------------------------

# .ci/run installs Chromium in the background while the suite runs and names a file here that appears
# when that install has ended (its text says how); the browser test runs last and waits for it.
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


def _find_chromium() -> str:
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


def _chromium(chromium: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _share_of_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> float:
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    near = (np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=1)
    return float(near.mean())


@pytest.mark.browser
def test_report_renders_in_headless_chromium(pipeline_report, tmp_path: Path) -> None:
    chromium = _find_chromium()
    html, _ = pipeline_report
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    run = _chromium(chromium, [f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                    tmp_path)
    if not shot.is_file() and not RUNNING_AS_ROOT and "sandbox" in run.stderr.lower():
        pytest.skip(f"chromium cannot start its sandbox here (run as root to use --no-sandbox): "
                    f"{run.stderr[-500:]}")
    assert shot.is_file(), f"no screenshot; chromium said:\n{run.stderr[-2000:]}"
    assert shot.stat().st_size > 40_000, "screenshot is nearly empty"
    try:
        blue = _share_of_colour(shot, (0x00, 0x72, 0xB2))  # stage-0 bars, weights, micro-batch 0
        orange = _share_of_colour(shot, (0xE6, 0x9F, 0x00))  # stage-1 bars, KV cache, micro-batch 1
    except ImportError:
        pytest.skip("pillow is not installed: cannot look at the screenshot's pixels")
    assert blue > 0.004 and orange > 0.002, (blue, orange)  # the charts were painted
    dom = _chromium(chromium, ["--dump-dom", page.as_uri()], tmp_path).stdout
    assert dom.count("<svg") == 6, "the SVG charts are not in the rendered DOM"
    assert dom.count("<rect") > 50 and "chart-timeline" in dom
