"""plan.md's formulas in continuous mode: each metric line is the form the planner optimized, and
its terms, multiplied out, give the number plan.json reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from solver.inputs.condition import build_condition, load_condition
from solver.planning.planner import solve
from solver.render.plan_markdown import plan_markdown

REPO = Path(__file__).resolve().parents[2]


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def _sum_of_terms(line: str) -> float:
    """'... = 1 x 143.777 + 0.558834 x 20.848 = **155.43 ms**' -> 1 x 143.777 + 0.558834 x 20.848."""
    numbers = line.split(" = ")[-2]
    return sum(float(a.replace(",", "")) * float(b.replace(",", ""))
               for a, b in re.findall(r"([\d.,]+) x ([\d.,]+)", numbers))


@pytest.mark.parametrize("name", ["llama70b-h100x8", "llama405b-h100x16"])
def test_each_metric_is_its_terms_multiplied_out(name: str) -> None:
    condition = load_condition(REPO / "conditions" / f"{name}.yaml")
    solution = solve(condition)
    plan, text = solution.plan, plan_markdown(condition, solution)
    assert plan.serving is not None and plan.serving.mode == "continuous"
    m = plan.metrics
    for start, reported, digits in (("- TTFT (", m.ttft_ms, 2), ("- TPOT, inter-token (", m.tpot_ms, 3),
                                    ("- e2e (mean)", m.e2e_latency_ms, 1)):
        line = _line(text, start)
        assert f"**{reported:,.{digits}f} ms**" in line, line
        assert _sum_of_terms(line) == pytest.approx(reported, rel=1e-4), line
    summary = text.split("\n\n")[1]
    assert f"max-num-seqs {plan.serving.max_num_seqs}" in summary
    assert f"max-num-batched-tokens {plan.serving.chunk_tokens}" in summary
    assert "batch " not in summary
    assert f"each of the {plan.serving.max_num_seqs} slots at the mean context" in text
    assert "sum(stage prefill)" not in text


def test_a_static_batch_keeps_its_fill_and_drain_formulas() -> None:
    condition = build_condition({
        "name": "static", "model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
        "serving": {"mode": "static"},
        "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 16}}, "static.yaml", "static")
    solution = solve(condition)
    text = plan_markdown(condition, solution)
    assert "batch 16 concurrent sequences per replica" in text.split("\n\n")[1]
    assert "TTFT = sum(stage prefill) + (m-1) x max(stage prefill)" in text
    assert "max-num-batched-tokens" not in text.split("## Predicted")[1].split("##")[0]
    assert "at full context (1024 + 128 tokens)" in text
