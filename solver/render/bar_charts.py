"""Bar charts: one bar per GPU (plan reports) and one horizontal bar per item (batch reports)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from solver.render.svg import Frame, Scale, clip, color, coord, empty_chart, esc, fmt, linear_domain

MAX_BARS = 512  # more GPUs than this: each bar is the maximum of a group of consecutive GPUs


@dataclass
class Series:
    name: str
    values: Sequence[float]
    color: str | None = None


def _group(values: Sequence[float], size: int) -> list[float]:
    return [max(values[i : i + size]) for i in range(0, len(values), size)]


@dataclass(frozen=True)
class _Layout:
    """Where the bars of a per-GPU chart go: bar b covers GPUs [b x per_bar, (b + 1) x per_bar)."""

    frame: Frame
    ys: Scale
    totals: list[float]  # per GPU: the bar's height (stacked: the sum of the series)
    per_bar: int
    slot: float
    gap: float
    unit: str

    def gpus(self, b: int) -> tuple[int, str, float]:
        """The GPU a bar shows (the largest of its run), its tooltip name and the bar's left edge."""
        first, last = b * self.per_bar, min(len(self.totals), (b + 1) * self.per_bar) - 1
        who = f"GPU {first}" if first == last else f"GPUs {first}-{last} (max)"
        i = max(range(first, last + 1), key=lambda k: self.totals[k])
        return i, who, self.frame.x0 + b * self.slot + self.gap / 2


def per_gpu_bars(
    title: str,
    y_label: str,
    series: Sequence[Series],
    *,
    stacked: bool = False,
    groups: Sequence[int] | None = None,
    group_name: str = "stage",
    limit: tuple[float, str] | None = None,
    show_mean: bool = True,
    unit: str = "",
    width: int = 640,
    height: int = 240,
) -> str:
    """One bar per GPU (stacked series, or one series coloured by `groups`, e.g. pipeline stage),
    with the mean as a dashed line and max/mean in the subtitle. Past MAX_BARS GPUs, each bar is the
    maximum of a run of consecutive GPUs (said in the axis label)."""
    n = len(series[0].values) if series else 0
    if n == 0:
        return empty_chart(title, "no GPUs")
    per_bar = max(1, math.ceil(n / MAX_BARS))
    totals = [sum(s.values[i] for s in series) for i in range(n)] if stacked else list(series[0].values)
    shown_totals = _group(totals, per_bar)
    frame = Frame(width, height, title, top=44, bottom=60)
    lo, hi = linear_domain(shown_totals + ([limit[0]] if limit else []))
    ys = Scale(lo, hi, frame.y0, frame.y1)
    frame.y_axis(ys, y_label)
    slot = (frame.x1 - frame.x0) / len(shown_totals)
    layout = _Layout(frame, ys, totals, per_bar, slot, 0.15 * slot if slot >= 4 else 0.0, unit)
    for b in range(len(shown_totals)):
        if stacked:
            _stacked_bar(layout, b, series)
        else:
            _bar(layout, b, series[0], groups, group_name)
    _mean_and_limit(layout, show_mean, limit)
    x_label = "GPU" if per_bar == 1 else f"GPU (each bar: max of {per_bar} consecutive GPUs)"
    _gpu_ticks(frame, n, per_bar, slot)
    frame.text((frame.x0 + frame.x1) / 2, frame.height - 6, x_label, size=11)
    if stacked:
        frame.legend(
            [(s.name, s.color or color(k)) for k, s in enumerate(series)], y=frame.height - 24
        )
    elif groups is not None and len(set(groups)) > 1:
        stages = sorted(set(groups))[:8]
        frame.legend([(f"{group_name} {g}", color(g)) for g in stages], y=frame.height - 24)
    frame.box()
    return frame.render("bars")


def _stacked_bar(layout: _Layout, b: int, series: Sequence[Series]) -> None:
    i, who, x = layout.gpus(b)
    ys, width, unit = layout.ys, layout.slot - layout.gap, layout.unit
    base = 0.0
    for k, s in enumerate(series):
        v = s.values[i]
        if v <= 0:
            continue
        y_top, y_bot = ys(base + v), ys(base)
        layout.frame.add(
            f'<rect x="{coord(x)}" y="{coord(y_top)}" width="{coord(width)}" '
            f'height="{coord(max(0.0, y_bot - y_top))}" fill="{s.color or color(k)}">'
            f"<title>{esc(who)}: {esc(s.name)} {esc(fmt(v))}{esc(unit)} "
            f"(total {esc(fmt(layout.totals[i]))}{esc(unit)})</title></rect>"
        )
        base += v


def _bar(layout: _Layout, b: int, series: Series, groups: Sequence[int] | None, group_name: str) -> None:
    i, who, x = layout.gpus(b)
    ys, v = layout.ys, layout.totals[i]
    g = groups[i] if groups is not None else 0
    fill = series.color or color(g if groups is not None else 0)
    extra = f", {group_name} {g}" if groups is not None else ""
    layout.frame.add(
        f'<rect x="{coord(x)}" y="{coord(ys(max(v, 0)))}" width="{coord(layout.slot - layout.gap)}" '
        f'height="{coord(max(0.0, ys(0) - ys(max(v, 0))))}" fill="{fill}">'
        f"<title>{esc(who)}{esc(extra)}: {esc(fmt(v))}{esc(layout.unit)}</title></rect>"
    )


def _mean_and_limit(layout: _Layout, show_mean: bool, limit: tuple[float, str] | None) -> None:
    """The dashed mean line, the red limit line and the max/mean subtitle."""
    frame, ys, totals, unit = layout.frame, layout.ys, layout.totals, layout.unit
    mean = sum(totals) / len(totals)
    peak = max(totals)
    if show_mean and mean > 0:
        y = ys(mean)
        frame.add(
            f'<line x1="{coord(frame.x0)}" y1="{coord(y)}" x2="{coord(frame.x1)}" y2="{coord(y)}" '
            f'stroke="#222" stroke-width="1.2" stroke-dasharray="5 4">'
            f"<title>mean {esc(fmt(mean))}{esc(unit)}</title></line>"
        )
    if limit:
        y = ys(limit[0])
        frame.add(
            f'<line x1="{coord(frame.x0)}" y1="{coord(y)}" x2="{coord(frame.x1)}" y2="{coord(y)}" '
            f'stroke="#C00000" stroke-width="1.5"><title>{esc(limit[1])}</title></line>'
        )
        frame.text(frame.x1 - 4, y - 4, limit[1], size=10, anchor="end", fill="#C00000")
    ratio = peak / mean if mean > 0 else 1.0
    frame.text(
        frame.x0,
        31,
        f"max {fmt(peak)}{unit} / mean {fmt(mean)}{unit} = {ratio:.3f}",
        size=10,
        anchor="start",
        fill="#555",
    )


def _gpu_ticks(frame: Frame, n: int, per_bar: int, slot: float) -> None:
    bars = math.ceil(n / per_bar)
    step = max(1, math.ceil(bars / 16))
    nice = next(
        s
        for s in (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 256, 512, 10**9)
        if s >= step
    )
    for b in range(0, bars, nice):
        frame.text(frame.x0 + (b + 0.5) * slot, frame.y0 + 13, str(b * per_bar), size=9)


def hbars(
    title: str,
    x_label: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    notes: Sequence[str] | None = None,
    unit: str = "",
    width: int = 760,
) -> str:
    """Horizontal bars, one per labelled item (e.g. one per condition); None = no bar + note."""
    if not labels:
        return empty_chart(title, "nothing to show")
    row = 18
    label_width = min(320, 12 + 6.4 * max(len(str(label)) for label in labels))
    frame = Frame(width, int(40 + 30 + row * len(labels)), title, left=int(label_width), bottom=34)
    finite = [v for v in values if v is not None]
    lo, hi = linear_domain(finite or [1.0])
    xs = Scale(lo, hi, frame.x0, frame.x1 - 40)
    frame.x_axis(xs, x_label)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = frame.y1 + i * row
        frame.text(
            frame.x0 - 6,
            y + row * 0.68,
            clip(str(label), int(label_width / 6.4)),
            size=10,
            anchor="end",
        )
        note = notes[i] if notes else ""
        if v is None:
            frame.text(
                frame.x0 + 4,
                y + row * 0.68,
                note or "no plan",
                size=10,
                anchor="start",
                fill="#C00000",
            )
            continue
        w = max(0.5, xs(v) - xs(0))
        frame.add(
            f'<rect x="{coord(xs(0))}" y="{coord(y + 3)}" width="{coord(w)}" height="{coord(row - 6)}" '
            f'fill="{color(0)}"><title>{esc(label)}: {esc(fmt(v))}{esc(unit)}'
            f"{esc(' - ' + note if note else '')}</title></rect>"
        )
        frame.text(xs(0) + w + 4, y + row * 0.68, fmt(v), size=9, anchor="start")
    frame.box()
    return frame.render("hbars")
