"""report.html of a plan: self-contained, every section and chart, listed in the manifest; renders in
Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.inputs.condition import build_condition
from solver.planning.planner import solve
from solver.render.plan_page import plan_html
from tests.paths import REPO as REPO_ROOT
from tests.render import browser

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
    solution = solve(condition, with_runner_ups=True)
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


def _share_of_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> float:
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    near = (np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=1)
    return float(near.mean())


@pytest.mark.browser
def test_report_renders_in_headless_chromium(pipeline_report, tmp_path: Path) -> None:
    """At 1,280 px: painted charts, no horizontal overflow, every chart a nonzero size, the
    runner-up table present; the screenshot is kept (tests/render/browser.py, SCREENSHOTS)."""
    binary = browser.find_chromium()
    html, _ = pipeline_report
    shot = browser.screenshot(binary, html, "plan-report-1280", tmp_path)
    assert shot.stat().st_size > 40_000, "screenshot is nearly empty"
    try:
        blue = _share_of_colour(shot, (0x00, 0x72, 0xB2))  # stage-0 bars, weights, micro-batch 0
        orange = _share_of_colour(shot, (0xE6, 0x9F, 0x00))  # stage-1 bars, KV cache, micro-batch 1
    except ImportError:
        pytest.skip("pillow is not installed: cannot look at the screenshot's pixels")
    assert blue > 0.004 and orange > 0.002, (blue, orange)  # the charts were painted
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    dom = browser.chromium(binary, ["--dump-dom", page.as_uri()], tmp_path).stdout
    assert dom.count("<svg") == 6, "the SVG charts are not in the rendered DOM"
    assert dom.count("<rect") > 50 and "chart-timeline" in dom
    measured = browser.measure(binary, html, tmp_path)
    browser.assert_fits(measured)
    assert len(measured["charts"]) == 6
    assert measured["runner_up_rows"] >= 2, "the runner-up table is missing (a header and a row)"
