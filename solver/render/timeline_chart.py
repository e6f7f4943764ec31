"""The pipeline timeline of one decode round: a Gantt chart of stages x micro-batches."""

from __future__ import annotations

import math
from collections.abc import Sequence

from solver.render.svg import Frame, Scale, color, coord, empty_chart, fmt, nice_ticks


def decode_round_schedule(
    stage_ms: Sequence[float], microbatches: int
) -> list[list[tuple[float, float]]]:
    """Start/end of micro-batch j on stage s for one decode round (every micro-batch produces one
    token): a flow shop, start(s, j) = max(end(s-1, j), end(s, j-1))."""
    ends: list[list[float]] = []
    schedule: list[list[tuple[float, float]]] = []
    for s, d in enumerate(stage_ms):
        row: list[tuple[float, float]] = []
        for j in range(microbatches):
            ready = ends[s - 1][j] if s else 0.0
            free = row[j - 1][1] if j else 0.0
            start = max(ready, free)
            row.append((start, start + d))
        schedule.append(row)
        ends.append([e for _, e in row])
    return schedule


def pipeline_timeline(
    stage_ms: Sequence[float],
    microbatches: int,
    tpot_ms: float,
    title: str = "Pipeline timeline of one decode round",
    width: int = 760,
) -> str:
    """Gantt chart: one row per pipeline stage, one box per micro-batch; the dashed line is TPOT,
    when micro-batch 0 starts its next token (max(sum of stages, m x slowest stage))."""
    stages = len(stage_ms)
    if stages == 0 or microbatches <= 0:
        return empty_chart(title, "no stages")
    schedule = decode_round_schedule(stage_ms, microbatches)
    makespan = max(end for row in schedule for _, end in row)
    row_h = 22 if stages <= 16 else max(6, int(352 / stages))
    frame = Frame(width, 34 + 60 + row_h * stages, title, left=70, bottom=60)
    xs = Scale(0.0, nice_ticks(0, max(makespan, tpot_ms))[-1], frame.x0, frame.x1)
    frame.x_axis(xs, "time within the round (ms)")
    label_every = max(1, math.ceil(stages / 16))
    for s, row in enumerate(schedule):
        y = frame.y1 + s * row_h
        if s % label_every == 0:
            frame.text(frame.x0 - 6, y + row_h * 0.7, f"stage {s}", size=10, anchor="end")
        for j, (start, end) in enumerate(row):
            x, w = xs(start), max(0.5, xs(end) - xs(start))
            frame.add(
                f'<rect x="{coord(x)}" y="{coord(y + 1)}" width="{coord(w)}" height="{coord(row_h - 2)}" '
                f'fill="{color(j)}" stroke="#fff" stroke-width="0.5">'
                f"<title>stage {s}, micro-batch {j}: {start:.3f}-{end:.3f} ms</title></rect>"
            )
            if w > 26 and row_h >= 14:
                frame.text(x + w / 2, y + row_h * 0.7, f"mb{j}", size=9, fill="#fff")
    x = xs(tpot_ms)
    frame.add(
        f'<line x1="{coord(x)}" y1="{coord(frame.y1 - 4)}" x2="{coord(x)}" y2="{coord(frame.y0)}" '
        f'stroke="#C00000" stroke-width="1.5" stroke-dasharray="6 3">'
        f"<title>TPOT {tpot_ms:.3f} ms: micro-batch 0 starts its next token</title></line>"
    )
    frame.text(
        x - 3, frame.y1 - 6, f"TPOT {fmt(tpot_ms)} ms", size=10, anchor="end", fill="#C00000"
    )
    frame.legend(
        [(f"micro-batch {j}", color(j)) for j in range(min(microbatches, 8))], y=frame.height - 26
    )
    frame.box()
    return frame.render("timeline")
