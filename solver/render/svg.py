"""Static SVG charts for the HTML reports, written by hand (no plotting library).

Why not matplotlib: measured on the 2-core CI machine (matplotlib 3.11, Agg, SVG output), importing
it costs 0.35-0.65 s warm (1.5-1.9 s on a cold cache) and six small bar figures 0.23-0.38 s, so a
plan report would add 0.6-1 s to every `paraplan solve` (about 1.3 s today) and to every plan folder
of a batch or sweep; the charts below render a whole plan report in 1-30 ms. They are simple
(bars, stacked bars, a Gantt timeline, a scatter with its Pareto front); written directly they are
byte-for-byte deterministic, carry a hover tooltip (<title>) on every mark, and can be inlined
many times in one page without clashing element ids (they use none).

This module is the canvas every chart draws on (colours, number formats, scales, the frame with
its axes and legend); bar_charts.py, timeline_chart.py and pareto_chart.py draw the charts. Every
chart function returns one `<svg>` element as a string, sized by its viewBox so it scales with the
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



def esc(text: object) -> str:
    return escape(str(text), quote=True)


def coord(x: float) -> str:
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
    ticks: list[float] = []
    v = start
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
            f' transform="rotate({coord(rotate)} {coord(x)} {coord(y)})"' if rotate is not None else ""
        )
        bold = ' font-weight="bold"' if weight != "normal" else ""
        self.add(
            f'<text x="{coord(x)}" y="{coord(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{bold}{transform}>{esc(text)}</text>'
        )

    def y_axis(self, scale: Scale, label: str, fmt_tick=fmt) -> None:
        for t in scale.ticks():
            y = scale(t)
            self.add(
                f'<line x1="{coord(self.x0)}" y1="{coord(y)}" x2="{coord(self.x1)}" y2="{coord(y)}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            self.text(self.x0 - 6, y + 4, fmt_tick(t), size=10, anchor="end")
        self.text(14, (self.y0 + self.y1) / 2, label, size=11, rotate=-90)

    def x_axis(self, scale: Scale, label: str, grid: bool = True, fmt_tick=fmt) -> None:
        for t in scale.ticks():
            x = scale(t)
            if grid:
                self.add(
                    f'<line x1="{coord(x)}" y1="{coord(self.y1)}" x2="{coord(x)}" y2="{coord(self.y0)}" '
                    f'stroke="{GRID}" stroke-width="1"/>'
                )
            self.text(x, self.y0 + 15, fmt_tick(t), size=10)
        self.text((self.x0 + self.x1) / 2, self.height - 8, label, size=11)

    def box(self) -> None:
        self.add(
            f'<line x1="{coord(self.x0)}" y1="{coord(self.y0)}" x2="{coord(self.x1)}" y2="{coord(self.y0)}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )
        self.add(
            f'<line x1="{coord(self.x0)}" y1="{coord(self.y0)}" x2="{coord(self.x0)}" y2="{coord(self.y1)}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )

    def legend(self, entries: Sequence[tuple[str, str]], y: float | None = None) -> None:
        x, y = self.x0, (self.top - 10) if y is None else y
        for name, fill in entries:
            self.add(f'<rect x="{coord(x)}" y="{coord(y - 9)}" width="10" height="10" fill="{fill}"/>')
            self.text(x + 14, y, name, size=10, anchor="start")
            x += 24 + 6.2 * len(name)

    def render(self, kind: str) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{esc(kind)}" '
            f'viewBox="0 0 {self.width} {self.height}" width="100%" '
            f'style="max-width:{self.width}px" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{esc(self.title)}" {FONT}>'
        )
        title = f"<title>{esc(self.title)}</title>"
        heading = (
            f'<text x="{coord(self.x0)}" y="16" font-size="13" font-weight="bold" '
            f'fill="#222">{esc(self.title)}</text>'
        )
        return "".join([head, title, heading, *self.parts, "</svg>"])


def empty_chart(title: str, message: str, width: int = 640, height: int = 120) -> str:
    frame = Frame(width, height, title)
    frame.text(width / 2, height / 2 + 6, message, size=12, fill=MUTED)
    return frame.render("empty")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"
