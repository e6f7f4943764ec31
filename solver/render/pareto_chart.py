"""Every feasible sweep point as a scatter, with the Pareto front joined by a staircase."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solver.render.svg import (
    MUTED,
    Frame,
    Scale,
    clip,
    color,
    coord,
    empty_chart,
    esc,
    linear_domain,
    padded_log_domain,
    wants_log,
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # tooltip
    short: str = ""  # drawn next to front points
    front: bool = False


def pareto_chart(
    points: Sequence[Point],
    title: str,
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 440,
    staircase: bool = True,
) -> str:
    """Every feasible point (grey), the Pareto front (coloured, labelled; joined by a staircase when
    the front is the chart's own two axes, both maximized)."""
    if not points:
        return empty_chart(title, "no feasible point to plot", width=width)
    frame = Frame(width, height, title, left=70, bottom=50, right=24)
    xs_v, ys_v = [p.x for p in points], [p.y for p in points]
    x_log, y_log = wants_log(xs_v), wants_log(ys_v)
    xd = padded_log_domain(xs_v) if x_log else linear_domain(xs_v)
    yd = padded_log_domain(ys_v) if y_log else linear_domain(ys_v)
    xs = Scale(*xd, frame.x0, frame.x1, log=x_log)
    ys = Scale(*yd, frame.y0, frame.y1, log=y_log)
    frame.y_axis(ys, y_label + (" (log)" if y_log else ""))
    frame.x_axis(xs, x_label + (" (log)" if x_log else ""))
    front = sorted((p for p in points if p.front), key=lambda p: p.x)
    if staircase and len(front) > 1:  # staircase: the best y reachable at a per-user speed of at least x
        path = [f"M{coord(xs(front[0].x))},{coord(ys(front[0].y))}"]
        for p in front[1:]:
            path.append(f"V{coord(ys(p.y))}H{coord(xs(p.x))}")
        frame.add(f'<path d="{"".join(path)}" fill="none" stroke="{color(5)}" stroke-width="1.5"/>')
    for p in points:
        if not p.front:
            frame.add(
                f'<circle cx="{coord(xs(p.x))}" cy="{coord(ys(p.y))}" r="3.5" fill="{MUTED}" '
                f'fill-opacity="0.7"><title>{esc(p.label)}</title></circle>'
            )
    distinct = sorted({(p.x, p.y) for p in front})
    labelled: set[tuple[float, float]] = set()
    for p in front:
        cx, cy = xs(p.x), ys(p.y)
        frame.add(
            f'<circle cx="{coord(cx)}" cy="{coord(cy)}" r="5" fill="{color(5)}" stroke="#fff" '
            f'stroke-width="1"><title>Pareto: {esc(p.label)}</title></circle>'
        )
        if len(distinct) <= 14 and p.short and (p.x, p.y) not in labelled:
            labelled.add((p.x, p.y))
            k = distinct.index((p.x, p.y))
            anchor = "end" if cx > (frame.x0 + frame.x1) / 2 else "start"
            dx = -8 if anchor == "end" else 8
            frame.text(
                cx + dx,
                cy - 6 - (k % 2) * 10,
                clip(p.short, 48),
                size=9,
                anchor=anchor,
                fill="#222",
            )
    frame.legend([("Pareto front", color(5)), ("other feasible points", MUTED)], y=frame.top - 8)
    frame.box()
    return frame.render("pareto")
