"""report.html of a sweep and of a batch at 1,280 px (issue 15): the tables fit (long names and
dotted keys wrap, a long error shows its first words and opens in full), the charts have a size.
The pages are built from summary rows made here, sized like a real 24-point sweep with three keys
and an error of several lines; the screenshots are kept (tests/render/browser.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from solver.render.run_page import pareto_svg, summary_html
from solver.runs.rows import empty_row
from solver.runs.summary import summary_frame
from solver.runs.sweep import pareto_front
from tests.render import browser

KEYS = ["hardware.num_nodes", "precision.weights", "workload.max_batch_size"]
LONG_ERROR = ("no plan meets every hard constraint (184 candidates tried); binding: CP-SAT "
              "infeasibility core (assumption literals, minimized): memory on pipeline stages 0, 1 "
              "— these constraint families together exclude every plan; memory: 184 of 184 "
              "candidates (per-GPU memory (weights + KV cache + activations + overhead) exceeds the "
              "usable memory) ") * 3


def _row(k: int, nodes: int, weights: str, batch: int) -> dict[str, Any]:
    name = f"llama70b-h100x8_num_nodes={nodes}_weights={weights}_max_batch_size={batch}"
    if k % 7 == 6:
        return empty_row(name, "c.yaml", "infeasible", LONG_ERROR) | dict(zip(
            KEYS, (nodes, weights, batch), strict=True))
    gpus = 8 * nodes
    per_gpu = 170.0 - nodes + (20 if weights == "fp8" else 0) + batch / 10
    throughput = per_gpu * gpus
    return {"name": name, "path": "c.yaml", "status": "optimal", "tp": 4, "pp": 1, "dp": 2 * nodes,
            "ep": 1, "etp": 1, "attn_dp": 1, "sp": 1, "batch": batch, "microbatches": 1,
            "gpus_used": gpus, "gpus_available": gpus, "ttft_ms": 1668.52, "tpot_ms": 13.9 + batch / 50,
            "e2e_ms": 8788.8, "throughput": throughput, "throughput_per_gpu": per_gpu,
            "tokens_per_s_per_user": 1000 / (13.9 + batch / 50), "requests_per_s": throughput / 512,
            "gpu_hours_per_million_tokens": gpus * 1e6 / (throughput * 3600),
            "cost_per_million_tokens_usd": 2.5 * gpus * 1e6 / (throughput * 3600),
            "balance_max_mean": 1.0, "balance_memory_max_mean": 1.0, "balance_comm_max_mean": 1.0,
            "max_memory_gb": 60.1, "solve_seconds": 0.31, "plan_dir": name, "error": None,
            **dict(zip(KEYS, (nodes, weights, batch), strict=True))}


def _frame():
    rows = [_row(k, nodes, weights, batch) for k, (nodes, weights, batch) in enumerate(
        (n, w, b) for n in (1, 2, 4) for w in ("fp8", "bf16") for b in (16, 32, 64, 256))]
    ok = [r["status"] == "optimal" for r in rows]

    def column(name: str) -> list[Any]:
        return [r[name] if good else None for r, good in zip(rows, ok, strict=True)]

    mask = pareto_front([column("tokens_per_s_per_user"), column("throughput"), column("gpus_used"),
                         column("gpu_hours_per_million_tokens")], [True, True, False, False])
    frame = summary_frame(rows, extra_columns=KEYS)
    frame.insert(frame.columns.get_loc("status") + 1, "pareto", mask)
    return frame


def _sweep_page() -> str:
    frame = _frame()
    return summary_html(frame, kind="sweep", title="Sweep of llama70b-h100x8: 24 points", seconds=12.0,
                        notes=[], axes=[(k, []) for k in KEYS],
                        pareto=pareto_svg(frame, KEYS, "Pareto front"), source="c.yaml")


def _batch_page() -> str:
    frame = _frame().drop(columns=["pareto", *KEYS])
    return summary_html(frame, kind="batch", title="Batch: 24 conditions", seconds=12.0, notes=[])


def test_a_long_error_shows_its_first_words_and_opens_in_full() -> None:
    html = _sweep_page()
    assert "<details><summary>no plan meets every hard constraint" in html
    summary = html.split("<details><summary>", 1)[1].split("</summary>", 1)[0]
    assert summary.endswith(" …") and len(summary) < 130
    assert LONG_ERROR.strip().split()[-1] in html  # the whole text is there, behind the click


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["sweep", "batch"])
def test_the_report_fits_1280_pixels(kind: str, tmp_path: Path) -> None:
    binary = browser.find_chromium()
    html = _sweep_page() if kind == "sweep" else _batch_page()
    shot = browser.screenshot(binary, html, f"{kind}-report-1280", tmp_path, height=3000)
    assert shot.stat().st_size > 20_000
    browser.assert_fits(browser.measure(binary, html, tmp_path))
