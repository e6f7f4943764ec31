#!/usr/bin/env python3
"""Predicted vs measured for every usable calibration row: tables, scatter chart, per-row CSV.

Usage: python scripts/accuracy.py [MEASURED_CSV] [--refit] [--docs DIR]

By default the parameters are read from the hardware cards (what the planner uses); --refit fits
them on the training split first (solver/calibration/fit.py, same as `paraplan calibrate`) without
writing the cards. Writes:
  docs/accuracy.md   the generated tables between the `generated` markers (the prose around them
                     is kept; a new file gets a short header)
  docs/accuracy.svg  predicted vs measured, one panel per metric (hand-written SVG)
  docs/accuracy.csv  one line per usable row: measured, predicted, ratio, role
  solver/inputs/model_error.yaml  the stated error per model family and GPU (from accuracy.csv),
                     which the planner reads to call close calls (solver/calibration/error_bands.py)
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solver.calibration.accuracy import (  # noqa: E402
    TARGETS_PCT,
    ErrorStats,
    Prediction,
    evaluate,
    leave_one_card_out_predictions,
)
from solver.calibration.calibrate import calibrate  # noqa: E402
from solver.calibration.error_bands import write_bands  # noqa: E402
from solver.calibration.measurements import (  # noqa: E402
    DATA_SOURCE,
    LOAD_LABELS,
    METRIC_LABELS,
    METRICS,
    ROLE_LABELS,
    ROLE_LEGACY,
    ROLE_TEST,
    ROLE_TRAIN,
    SkippedRow,
    load_measured,
)
from solver.calibration.parameters import Params, baseline_params, card_params, params_table  # noqa: E402
from solver.render.writer import write_atomic  # noqa: E402

BEGIN, END = "<!-- generated:begin (scripts/accuracy.py) -->", "<!-- generated:end -->"
ROLES = (ROLE_TRAIN, ROLE_TEST, ROLE_LEGACY)
UNITS = {"throughput": "output tokens/s", "ttft": "ms", "itl": "ms"}
SCALE = {"throughput": 1.0, "ttft": 1e3, "itl": 1e3}  # canonical (tokens/s, s) -> shown


# ---- tables --------------------------------------------------------------------------------------


def _cell(preds: Sequence[Prediction]) -> str:
    if not preds:
        return "-"
    s = ErrorStats.of(preds)
    return f"{s.median:.1f}% / {s.p90:.0f}% ({s.n})"


def _grouped(preds: Sequence[Prediction], key: Callable[[Prediction], str], title: str,
             select: Callable[[Prediction], bool]) -> list[str]:
    chosen = [p for p in preds if select(p)]
    groups = sorted({key(p) for p in chosen})
    lines = [f"| {title} | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
             "|---" * (len(METRICS) + 1) + "|"]
    for g in groups:
        mine = [p for p in chosen if key(p) == g]
        lines.append(f"| {g} | " + " | ".join(_cell([p for p in mine if p.row.metric == m])
                                              for m in METRICS) + " |")
    lines.append("| **all** | " + " | ".join(_cell([p for p in chosen if p.row.metric == m])
                                            for m in METRICS) + " |")
    return lines


def headline(preds: Sequence[Prediction], base: Sequence[Prediction]) -> list[str]:
    lines = ["| metric (held-out rows) | rows | median abs error | p90 | median predicted/measured "
             "| uncalibrated median | target | met |", "|---|---|---|---|---|---|---|---|"]
    for m in METRICS:
        s = ErrorStats.of([p for p in preds if p.role == ROLE_TEST and p.row.metric == m])
        b = ErrorStats.of([p for p in base if p.role == ROLE_TEST and p.row.metric == m])
        t = TARGETS_PCT[m]
        lines.append(f"| {METRIC_LABELS[m]} | {s.n} | **{s.median:.1f}%** | {s.p90:.1f}% | "
                     f"{s.bias:.2f} | {b.median:.1f}% | <= {t:.0f}% | "
                     f"{'yes' if s.median <= t else '**no**'} |")
    return lines


def by_role(preds: Sequence[Prediction], base: Sequence[Prediction]) -> list[str]:
    lines = ["| rows | parameters | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
             "|---|---|---|---|---|"]
    for r in ROLES:
        for label, source in (("calibrated", preds), ("uncalibrated", base)):
            mine = [p for p in source if p.role == r]
            if mine:
                lines.append(f"| {ROLE_LABELS[r]} | {label} | " + " | ".join(
                    _cell([p for p in mine if p.row.metric == m]) for m in METRICS) + " |")
    not_fitted = [p for p in preds if p.role != ROLE_TRAIN]
    lines.append("| every row not fitted (held-out + evaluated only) | calibrated | " + " | ".join(
        _cell([p for p in not_fitted if p.row.metric == m]) for m in METRICS) + " |")
    return lines


def worst(preds: Sequence[Prediction], n: int = 15) -> list[str]:
    lines = ["| row | model | GPU | TP | prec | isl/osl | load | metric | measured | predicted "
             "| pred/meas | rows |", "|---" * 12 + "|"]
    for p in sorted(preds, key=lambda p: -abs(math.log(p.ratio)))[:n]:
        r = p.row
        load = LOAD_LABELS[r.load] + (f" {r.load_value:g}" if r.load != "max" else "")
        lines.append(
            f"| {r.index} | {r.model} | {r.gpu_card} | {r.tp} | {r.precision} | {r.isl}/{r.osl} | "
            f"{load} | {r.metric} | {r.measured * SCALE[r.metric]:.4g} | "
            f"{p.predicted * SCALE[r.metric]:.4g} | {p.ratio:.2f} | {ROLE_LABELS[p.role]} |")
    return lines


def not_usable(skipped: Sequence[SkippedRow]) -> list[str]:
    reasons: dict[str, list[int]] = {}
    for s in skipped:
        reasons.setdefault(s.reason, []).append(s.index)
    lines = ["| rows | reason | CSV data rows (0-based) |", "|---|---|---|"]
    for reason, idx in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"| {len(idx)} | {reason} | {_ranges(sorted(idx))} |")
    return lines


def _ranges(idx: list[int]) -> str:
    out, start, prev = [], idx[0], idx[0]
    for i in idx[1:] + [None]:  # type: ignore[list-item]
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)


def generated(preds: list[Prediction], base: list[Prediction], skipped: list[SkippedRow],
              params: Params, source: str, loco: list[Prediction]) -> str:
    everything = lambda p: True  # noqa: E731
    held = lambda p: p.role == ROLE_TEST  # noqa: E731
    fitted_cards = {p.row.gpu_card for p in preds if p.role == ROLE_TRAIN}
    parts = [
        f"Data: `{DATA_SOURCE}` ({source}); {len(preds)} usable rows, {len(skipped)} not usable. "
        f"Rows fitted: {sum(p.role == ROLE_TRAIN for p in preds)}; held out: "
        f"{sum(p.role == ROLE_TEST for p in preds)}; evaluated only: "
        f"{sum(p.role == ROLE_LEGACY for p in preds)}. Cells: median absolute "
        "percentage error / 90th percentile (rows).",
        "", "### Held-out error against the targets of issue 6", "", *headline(preds, base),
        "", "### By role: fitted, held out, evaluated only", "", *by_role(preds, base),
        "", "### Fitted parameters (as in the cards)", "",
        *params_table({g: p for g, p in params.items() if g in fitted_cards}),
        "", "### Cards without measurements: leave-one-card-out", "",
        "Each calibrated card predicted with the parameters solver/calibration/transfer.py gives "
        "it from the other cards (as a card without measurements gets them); every row of "
        "current engines, train and held-out alike (none was fitted on that card).", "",
        *_grouped(loco, lambda p: p.row.gpu_card, "card predicted from the others", everything),
        "", "### Per GPU card: held-out rows", "",
        *_grouped(preds, lambda p: p.row.gpu_card, "card", held),
        "", "### Per GPU card: every usable row", "",
        *_grouped(preds, lambda p: p.row.gpu_card, "card", everything),
        "", "### Per model family: held-out rows", "",
        *_grouped(preds, lambda p: p.row.family, "family", held),
        "", "### Per model family: every usable row", "",
        *_grouped(preds, lambda p: p.row.family, "family", everything),
        "", "### Per measurement protocol: every usable row", "",
        *_grouped(preds, lambda p: LOAD_LABELS[p.row.load], "load", everything),
        "", "### Per engine version: every usable row", "",
        *_grouped(preds, lambda p: p.row.software or "?", "software", everything),
        "", "### The 15 largest errors", "", *worst(preds),
        "", "### Rows not usable", "", *not_usable(skipped),
        "", "Chart: [accuracy.svg](accuracy.svg); every row: [accuracy.csv](accuracy.csv).",
    ]
    return "\n".join(parts)


# ---- chart ---------------------------------------------------------------------------------------

COLORS = {ROLE_TRAIN: "#4c78a8", ROLE_TEST: "#f58518", ROLE_LEGACY: "#9d9d9d"}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ticks(lo: float, hi: float) -> list[float]:
    out = []
    decades = math.log10(hi / lo)
    steps = (1, 2, 5) if decades <= 2.5 else (1, 3) if decades <= 4 else (1,)
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in steps:
            v = m * 10.0**e
            if lo <= v <= hi:
                out.append(v)
    return out


def svg_chart(preds: Sequence[Prediction]) -> str:
    panel, pad, gap, top = 360, 56, 30, 40
    width = len(METRICS) * (panel + pad + gap) + gap
    height = top + panel + pad + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">paraplan cost model: '
           'predicted vs measured (log-log; solid: y = x, dashed: +-20%)</text>']
    for i, metric in enumerate(METRICS):
        mine = [p for p in preds if p.row.metric == metric]
        if not mine:
            continue
        scale = SCALE[metric]
        values = [v * scale for p in mine for v in (p.predicted, p.row.measured)]
        lo, hi = min(values) / 1.3, max(values) * 1.3
        x0 = gap + i * (panel + pad + gap) + pad
        y0 = top

        def px(v: float, x0: float = x0, lo: float = lo, hi: float = hi) -> float:
            return x0 + (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) * panel

        def py(v: float, y0: float = y0, lo: float = lo, hi: float = hi) -> float:
            return y0 + panel - (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) * panel

        out.append(f'<rect x="{x0}" y="{y0}" width="{panel}" height="{panel}" fill="none" '
                   'stroke="#333"/>')
        for t in _ticks(lo, hi):
            label = f"{t:g}" if t < 1000 else f"{t / 1000:g}k"
            out.append(f'<line x1="{px(t):.1f}" y1="{y0}" x2="{px(t):.1f}" y2="{y0 + panel}" '
                       'stroke="#eee"/>')
            out.append(f'<line x1="{x0}" y1="{py(t):.1f}" x2="{x0 + panel}" y2="{py(t):.1f}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{px(t):.1f}" y="{y0 + panel + 14}" text-anchor="middle">'
                       f'{label}</text>')
            out.append(f'<text x="{x0 - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{label}</text>')
        for factor, dash in ((1.0, ""), (1.2, ' stroke-dasharray="4 3"'),
                             (1 / 1.2, ' stroke-dasharray="4 3"')):
            a, b = lo * max(1, 1 / factor), hi * min(1, 1 / factor)
            out.append(f'<line x1="{px(a):.1f}" y1="{py(a * factor):.1f}" x2="{px(b):.1f}" '
                       f'y2="{py(b * factor):.1f}" stroke="#555"{dash}/>')
        for r in ROLES:
            for p in (q for q in mine if q.role == r):
                x, y = px(p.row.measured * scale), py(p.predicted * scale)
                fill = COLORS[r]
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{fill}" '
                           f'fill-opacity="0.75" stroke="{COLORS[r]}"><title>{_esc(_tip(p))}'
                           '</title></circle>')
        out.append(f'<text x="{x0 + panel / 2}" y="{y0 - 6}" text-anchor="middle" '
                   f'font-size="13">{METRIC_LABELS[metric]} ({len(mine)} rows)</text>')
        out.append(f'<text x="{x0 + panel / 2}" y="{y0 + panel + 32}" text-anchor="middle">'
                   f'measured, {UNITS[metric]}</text>')
        out.append(f'<text transform="translate({x0 - 40},{y0 + panel / 2}) rotate(-90)" '
                   f'text-anchor="middle">predicted, {UNITS[metric]}</text>')
    x = gap + pad
    for r in ROLES:
        fill = COLORS[r]
        out.append(f'<circle cx="{x}" cy="{height - 14}" r="4" fill="{fill}" '
                   f'stroke="{COLORS[r]}"/>')
        out.append(f'<text x="{x + 8}" y="{height - 10}">{_esc(ROLE_LABELS[r])}</text>')
        x += 60 + 6.2 * len(ROLE_LABELS[r])
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _tip(p: Prediction) -> str:
    r = p.row
    return (f"row {r.index}: {r.model} {r.gpu_card} TP{r.tp} {r.precision} {r.isl}/{r.osl} "
            f"{LOAD_LABELS[r.load]} {r.load_value:g}; measured {r.measured * SCALE[r.metric]:.4g}, "
            f"predicted {p.predicted * SCALE[r.metric]:.4g} ({p.ratio:.2f}x)")


# ---- files ---------------------------------------------------------------------------------------


def rows_csv(preds: Sequence[Prediction], base: Sequence[Prediction]) -> str:
    uncal = {(p.row.index): p.predicted for p in base}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "model", "model_card", "gpu_card", "tp", "precision", "isl", "osl", "load",
                "load_value", "software", "metric", "unit", "measured", "predicted",
                "predicted_uncalibrated", "ratio", "abs_pct_error", "split", "role"])
    for p in sorted(preds, key=lambda p: p.row.index):
        r, s = p.row, SCALE[p.row.metric]
        w.writerow([r.index, r.model, r.model_card, r.gpu_card, r.tp, r.precision, r.isl, r.osl,
                    r.load, f"{r.load_value:g}", r.software, r.metric, UNITS[r.metric],
                    f"{r.measured * s:.6g}", f"{p.predicted * s:.6g}",
                    f"{uncal[r.index] * s:.6g}", f"{p.ratio:.4f}", f"{p.error_pct:.2f}",
                    r.split, p.role])
    return buf.getvalue()


def merge_markdown(existing: str | None, block: str) -> str:
    body = f"{BEGIN}\n\n{block}\n\n{END}"
    if existing and BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        return head + body + rest.split(END, 1)[1]
    return ("# Cost-model accuracy\n\nGenerated by `python scripts/accuracy.py`; see "
            "solver/calibration/fit.py for the method.\n\n" + body + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measured", nargs="?", type=Path, default=None,
                        help=f"measurements CSV (default: {DATA_SOURCE})")
    parser.add_argument("--refit", action="store_true",
                        help="fit on the training split instead of reading the cards")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    rows, skipped = load_measured(args.measured)
    base_params = baseline_params(rows)
    base, unusable = evaluate(rows, base_params)
    usable = [p.row for p in base]
    if args.refit:  # the same fit as `paraplan calibrate`, without writing the cards
        params = calibrate(args.measured).params
        source = "parameters refitted by scripts/accuracy.py --refit"
    else:
        params = card_params(usable)
        source = "parameters read from conditions/hardware/*.yaml"
    preds, _ = evaluate(usable, params)
    loco = leave_one_card_out_predictions(usable, params)
    docs = args.docs
    md_path = docs / "accuracy.md"
    existing = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    block = generated(preds, base, skipped + unusable, params, source, loco)
    write_atomic(md_path, merge_markdown(existing, block))
    write_atomic(docs / "accuracy.svg", svg_chart(preds))
    write_atomic(docs / "accuracy.csv", rows_csv(preds, base))
    bands = write_bands(docs / "accuracy.csv")
    for line in headline(preds, base):
        print(line)
    print(f"wrote {md_path}, {docs / 'accuracy.svg'}, {docs / 'accuracy.csv'}, {bands}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
