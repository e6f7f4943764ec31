"""The SVG charts of report.html: escaped text, the flow-shop timeline, grouped bars, ticks, the
Pareto chart."""

from __future__ import annotations

import pytest

from solver.render.bar_charts import MAX_BARS, Series, per_gpu_bars
from solver.render.pareto_chart import Point, pareto_chart
from solver.render.svg import nice_ticks
from solver.render.timeline_chart import decode_round_schedule


def test_text_in_charts_is_escaped() -> None:
    svg = per_gpu_bars(
        "<script>alert(1)</script>", "ms", [Series("a&b", [1.0, 2.0])], stacked=True
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg


def test_decode_round_schedule_is_a_flow_shop() -> None:
    stage_ms, m = [3.0, 5.0, 2.0], 4
    schedule = decode_round_schedule(stage_ms, m)
    makespan = max(end for row in schedule for _, end in row)
    assert makespan == pytest.approx(sum(stage_ms) + (m - 1) * max(stage_ms))
    for s, row in enumerate(schedule):
        for j, (start, end) in enumerate(row):
            assert end - start == pytest.approx(stage_ms[s])
            if s:
                assert start >= schedule[s - 1][j][1] - 1e-12  # after the previous stage
            if j:
                assert start >= row[j - 1][1] - 1e-12  # one micro-batch at a time per stage


def test_many_gpus_are_grouped_into_at_most_max_bars() -> None:
    values = [float(i % 7) for i in range(4096)]
    svg = per_gpu_bars("big", "ms", [Series("x", values)])
    assert svg.count("<rect") <= MAX_BARS + 10
    assert "max of 8 consecutive GPUs" in svg


def test_nice_ticks_cover_the_range() -> None:
    for lo, hi in ((0, 1), (0, 713.7), (0.001, 0.0042), (0, 1e7), (5, 5)):
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) <= 12


def test_pareto_chart_draws_front_and_others() -> None:
    points = [
        Point(10, 100, "a", "A", True),
        Point(20, 50, "b", "B", True),
        Point(12, 40, "c"),
    ]
    svg = pareto_chart(points, "t", "x", "y")
    assert svg.count("<circle") == 3 and "<path" in svg and "Pareto: a" in svg
    assert "no feasible point" in pareto_chart([], "t", "x", "y")
