"""Static SVG charts for the HTML reports, written by hand (no plotting library).

Why not matplotlib: measured on the 2-core CI machine (matplotlib 3.11, Agg, SVG output), importing
it costs 0.35-0.65 s warm (1.5-1.9 s on a cold cache) and six small bar figures 0.23-0.38 s, so a
plan report would add 0.6-1 s to every `paraplan solve` (about 1.3 s today) and to every plan folder
of a batch or sweep; the charts below render a whole plan report in 1-30 ms. They are simple
(bars, stacked bars, a Gantt timeline, a scatter with its Pareto front); written directly they are
byte-for-byte deterministic, carry a hover tooltip (<title>) on every mark, and can be inlined
many times in one page without clashing element ids (they use none).

Every function returns one `<svg>` element as a string, sized by its viewBox so it scales with the
page; all text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito, readable by colour-blind viewers; the first colours are the most distinct.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GRID = "#d9d9d9"
AXIS = "#444444"
MUTED = "#9a9a9a"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif\""
MAX_BARS = 512  # more GPUs than this: each bar is the maximum of a group of consecutive GPUs


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt(value: float) -> str:
    """Short human number: 1.23k, 45.6, 0.0123, 1.2M."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.3g}G"
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 1 or a == 0:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    """Coordinates with two decimals and no trailing zeros (smaller, deterministic files)."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# ---- scales --------------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 x 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v < hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = []
    for e in range(lo_e, hi_e + 1):
        for m in (1, 2, 5) if hi_e - lo_e <= 3 else (1,):
            v = m * 10.0**e
            if lo * 0.999 <= v <= hi * 1.001:
                ticks.append(v)
    return ticks or [lo, hi]


@dataclass
class Scale:
    lo: float
    hi: float
    a: float  # pixel of lo
    b: float  # pixel of hi
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            t = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo) if self.hi != self.lo else 0.0
        return self.a + t * (self.b - self.a)

    def ticks(self) -> list[float]:
        if self.log:
            return log_ticks(self.lo, self.hi)
        return [t for t in nice_ticks(self.lo, self.hi) if self.lo - 1e-9 <= t <= self.hi + 1e-9]


def linear_domain(values: Sequence[float], include_zero: bool = True) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo = min(finite, default=0.0)
    hi = max(finite, default=1.0)
    if include_zero:
        lo = min(lo, 0.0)
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    ticks = nice_ticks(lo, hi)
    return (ticks[0] if not include_zero else min(0.0, ticks[0])), ticks[-1]


def padded_log_domain(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v and v > 0 and math.isfinite(v)]
    lo, hi = min(finite), max(finite)
    return 10 ** math.floor(math.log10(lo) * 1.0 + 1e-12), 10 ** math.ceil(math.log10(hi) - 1e-12)


def wants_log(values: Sequence[float], ratio: float = 50.0) -> bool:
    finite = [v for v in values if v and v > 0 and math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > ratio


# ---- the frame every chart shares ----------------------------------------------------------------


@dataclass
class Frame:
    """An SVG canvas with a plot area and margins; collects elements, then renders."""

    width: int
    height: int
    title: str
    left: int = 64
    right: int = 16
    top: int = 34
    bottom: int = 46
    parts: list[str] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:  # bottom of the plot area (pixels grow downwards)
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self,
        x: float,
        y: float,
        text: object,
        size: int = 11,
        anchor: str = "middle",
        fill: str = AXIS,
        weight: str = "normal",
        rotate: float | None = None,
    ) -> None:
        transform = (
            f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"' if rotate is not None else ""
        )
        bold = ' font-weight="bold"' if weight != "normal" else ""
        self.add(
            f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{bold}{transform}>{_t(text)}</text>'
        )

    def y_axis(self, scale: Scale, label: str, fmt_tick=fmt) -> None:
        for t in scale.ticks():
            y = scale(t)
            self.add(
                f'<line x1="{_n(self.x0)}" y1="{_n(y)}" x2="{_n(self.x1)}" y2="{_n(y)}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            self.text(self.x0 - 6, y + 4, fmt_tick(t), size=10, anchor="end")
        self.text(14, (self.y0 + self.y1) / 2, label, size=11, rotate=-90)

    def x_axis(self, scale: Scale, label: str, grid: bool = True, fmt_tick=fmt) -> None:
        for t in scale.ticks():
            x = scale(t)
            if grid:
                self.add(
                    f'<line x1="{_n(x)}" y1="{_n(self.y1)}" x2="{_n(x)}" y2="{_n(self.y0)}" '
                    f'stroke="{GRID}" stroke-width="1"/>'
                )
            self.text(x, self.y0 + 15, fmt_tick(t), size=10)
        self.text((self.x0 + self.x1) / 2, self.height - 8, label, size=11)

    def box(self) -> None:
        self.add(
            f'<line x1="{_n(self.x0)}" y1="{_n(self.y0)}" x2="{_n(self.x1)}" y2="{_n(self.y0)}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )
        self.add(
            f'<line x1="{_n(self.x0)}" y1="{_n(self.y0)}" x2="{_n(self.x0)}" y2="{_n(self.y1)}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )

    def legend(self, entries: Sequence[tuple[str, str]], y: float | None = None) -> None:
        x, y = self.x0, (self.top - 10) if y is None else y
        for name, fill in entries:
            self.add(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="10" height="10" fill="{fill}"/>')
            self.text(x + 14, y, name, size=10, anchor="start")
            x += 24 + 6.2 * len(name)

    def render(self, kind: str) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{_t(kind)}" '
            f'viewBox="0 0 {self.width} {self.height}" width="100%" '
            f'style="max-width:{self.width}px" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{_t(self.title)}" {FONT}>'
        )
        title = f"<title>{_t(self.title)}</title>"
        heading = (
            f'<text x="{_n(self.x0)}" y="16" font-size="13" font-weight="bold" '
            f'fill="#222">{_t(self.title)}</text>'
        )
        return "".join([head, title, heading, *self.parts, "</svg>"])


def empty_chart(title: str, message: str, width: int = 640, height: int = 120) -> str:
    frame = Frame(width, height, title)
    frame.text(width / 2, height / 2 + 6, message, size=12, fill=MUTED)
    return frame.render("empty")


# ---- bar charts ----------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    values: Sequence[float]
    color: str | None = None


def _group(values: Sequence[float], size: int) -> list[float]:
    return [max(values[i : i + size]) for i in range(0, len(values), size)]


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
    bars = len(shown_totals)
    frame = Frame(width, height, title, top=44, bottom=60)
    lo, hi = linear_domain(shown_totals + ([limit[0]] if limit else []))
    ys = Scale(lo, hi, frame.y0, frame.y1)
    frame.y_axis(ys, y_label)
    slot = (frame.x1 - frame.x0) / bars
    gap = 0.15 * slot if slot >= 4 else 0.0
    for b in range(bars):
        first, last = b * per_bar, min(n, (b + 1) * per_bar) - 1
        x = frame.x0 + b * slot + gap / 2
        who = f"GPU {first}" if first == last else f"GPUs {first}-{last} (max)"
        if stacked:
            base = 0.0
            i = max(range(first, last + 1), key=lambda k: totals[k])
            for k, s in enumerate(series):
                v = s.values[i]
                if v <= 0:
                    continue
                y_top, y_bot = ys(base + v), ys(base)
                frame.add(
                    f'<rect x="{_n(x)}" y="{_n(y_top)}" width="{_n(slot - gap)}" '
                    f'height="{_n(max(0.0, y_bot - y_top))}" fill="{s.color or color(k)}">'
                    f"<title>{_t(who)}: {_t(s.name)} {_t(fmt(v))}{_t(unit)} "
                    f"(total {_t(fmt(totals[i]))}{_t(unit)})</title></rect>"
                )
                base += v
        else:
            i = max(range(first, last + 1), key=lambda k: totals[k])
            v = totals[i]
            g = groups[i] if groups is not None else 0
            fill = series[0].color or color(g if groups is not None else 0)
            extra = f", {group_name} {g}" if groups is not None else ""
            frame.add(
                f'<rect x="{_n(x)}" y="{_n(ys(max(v, 0)))}" width="{_n(slot - gap)}" '
                f'height="{_n(max(0.0, ys(0) - ys(max(v, 0))))}" fill="{fill}">'
                f"<title>{_t(who)}{_t(extra)}: {_t(fmt(v))}{_t(unit)}</title></rect>"
            )
    mean = sum(totals) / n
    peak = max(totals)
    if show_mean and mean > 0:
        y = ys(mean)
        frame.add(
            f'<line x1="{_n(frame.x0)}" y1="{_n(y)}" x2="{_n(frame.x1)}" y2="{_n(y)}" '
            f'stroke="#222" stroke-width="1.2" stroke-dasharray="5 4">'
            f"<title>mean {_t(fmt(mean))}{_t(unit)}</title></line>"
        )
    if limit:
        y = ys(limit[0])
        frame.add(
            f'<line x1="{_n(frame.x0)}" y1="{_n(y)}" x2="{_n(frame.x1)}" y2="{_n(y)}" '
            f'stroke="#C00000" stroke-width="1.5"><title>{_t(limit[1])}</title></line>'
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
            _clip(str(label), int(label_width / 6.4)),
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
            f'<rect x="{_n(xs(0))}" y="{_n(y + 3)}" width="{_n(w)}" height="{_n(row - 6)}" '
            f'fill="{color(0)}"><title>{_t(label)}: {_t(fmt(v))}{_t(unit)}'
            f"{_t(' - ' + note if note else '')}</title></rect>"
        )
        frame.text(xs(0) + w + 4, y + row * 0.68, fmt(v), size=9, anchor="start")
    frame.box()
    return frame.render("hbars")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"


# ---- pipeline timeline ---------------------------------------------------------------------------


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
                f'<rect x="{_n(x)}" y="{_n(y + 1)}" width="{_n(w)}" height="{_n(row_h - 2)}" '
                f'fill="{color(j)}" stroke="#fff" stroke-width="0.5">'
                f"<title>stage {s}, micro-batch {j}: {start:.3f}-{end:.3f} ms</title></rect>"
            )
            if w > 26 and row_h >= 14:
                frame.text(x + w / 2, y + row_h * 0.7, f"mb{j}", size=9, fill="#fff")
    x = xs(tpot_ms)
    frame.add(
        f'<line x1="{_n(x)}" y1="{_n(frame.y1 - 4)}" x2="{_n(x)}" y2="{_n(frame.y0)}" '
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


# ---- scatter with Pareto front -------------------------------------------------------------------


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
) -> str:
    """Every feasible point (grey), the Pareto front (coloured, joined by a staircase, labelled)."""
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
    if len(front) > 1:  # staircase: the best y reachable at a per-user speed of at least x
        path = [f"M{_n(xs(front[0].x))},{_n(ys(front[0].y))}"]
        for p in front[1:]:
            path.append(f"V{_n(ys(p.y))}H{_n(xs(p.x))}")
        frame.add(f'<path d="{"".join(path)}" fill="none" stroke="{color(5)}" stroke-width="1.5"/>')
    for p in points:
        if not p.front:
            frame.add(
                f'<circle cx="{_n(xs(p.x))}" cy="{_n(ys(p.y))}" r="3.5" fill="{MUTED}" '
                f'fill-opacity="0.7"><title>{_t(p.label)}</title></circle>'
            )
    distinct = sorted({(p.x, p.y) for p in front})
    labelled: set[tuple[float, float]] = set()
    for p in front:
        cx, cy = xs(p.x), ys(p.y)
        frame.add(
            f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="5" fill="{color(5)}" stroke="#fff" '
            f'stroke-width="1"><title>Pareto: {_t(p.label)}</title></circle>'
        )
        if len(distinct) <= 14 and p.short and (p.x, p.y) not in labelled:
            labelled.add((p.x, p.y))
            k = distinct.index((p.x, p.y))
            anchor = "end" if cx > (frame.x0 + frame.x1) / 2 else "start"
            dx = -8 if anchor == "end" else 8
            frame.text(
                cx + dx,
                cy - 6 - (k % 2) * 10,
                _clip(p.short, 48),
                size=9,
                anchor=anchor,
                fill="#222",
            )
    frame.legend([("Pareto front", color(5)), ("other feasible points", MUTED)], y=frame.top - 8)
    frame.box()
    return frame.render("pareto")
