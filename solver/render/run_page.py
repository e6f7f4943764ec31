"""report.html of a batch or a sweep: counts, charts (throughput and TPOT per condition, or the
Pareto front of a sweep), and one table row per condition or point, linked to its plan page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from solver.render.bar_charts import hbars
from solver.render.html import environment, number
from solver.render.pareto_chart import Point, pareto_chart

if TYPE_CHECKING:  # batch and sweep pages get DataFrames; a plan page never imports pandas
    import pandas as pd

OK = ("optimal", "feasible")
TABLE_NUMBERS = (
    "batch",
    "gpus_used",
    "gpus_available",
    "ttft_ms",
    "tpot_ms",
    "throughput",
    "throughput_per_gpu",
    "tokens_per_s_per_user",
    "balance_max_mean",
    "solve_seconds",
)
TABLE_HEADERS = (
    "batch",
    "GPUs used",
    "GPUs avail.",
    "TTFT ms",
    "TPOT ms",
    "tok/s",
    "tok/s/GPU",
    "tok/s/user",
    "balance max/mean",
    "solve s",
)


def _shape(row: pd.Series) -> str:
    from solver.physics.shapes import ParallelShape

    try:
        values = {d: int(row[d]) for d in ("tp", "pp", "dp", "ep", "etp", "attn_dp", "sp")}
    except (TypeError, ValueError):
        return "-"
    return ParallelShape(**values).label


def _cell(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def pareto_svg(frame: pd.DataFrame, keys: list[str], title: str) -> str:
    ok = frame[frame["status"].isin(OK)]
    points = []
    for _, row in ok.iterrows():
        swept = ", ".join(f"{k}={_cell(row[k])}" for k in keys)
        label = (
            f"{swept}: {_shape(row)}, batch {row['batch']}, {row['gpus_used']} GPUs, "
            f"TPOT {row['tpot_ms']:.2f} ms, TTFT {row['ttft_ms']:.0f} ms, "
            f"{row['throughput_per_gpu']:.1f} tok/s/GPU"
        )
        points.append(
            Point(
                float(row["tokens_per_s_per_user"]),
                float(row["throughput_per_gpu"]),
                label,
                short=f"{_shape(row)}, batch {row['batch']}",
                front=bool(row["pareto"]),
            )
        )
    return pareto_chart(points, title, "tokens/s per user (1000 / TPOT ms)", "output tokens/s per GPU")


def summary_html(
    frame: pd.DataFrame,
    *,
    kind: str,
    title: str,
    seconds: float,
    notes: list[str],
    axes: list[tuple[str, list[str]]] | None = None,
    pareto: str | None = None,
    source: str = "",
) -> str:
    keys = [k for k, _ in (axes or [])]
    ok_mask = frame["status"].isin(OK)
    chart_list: list[tuple[str, Markup]] = []
    if pareto:
        chart_list.append(("pareto", Markup(pareto)))
    if kind == "batch":
        chart_list += _batch_charts(frame, ok_mask)
    rows = _rows(frame, keys)
    context = {
        "title": title,
        "kind": kind,
        "seconds": seconds,
        "notes": notes,
        "axes": axes or [],
        "keys": keys,
        "counts": frame["status"].value_counts().to_dict(),
        "total": len(frame),
        "charts": chart_list,
        "rows": rows,
        "front": _front(rows),
        "numbers": TABLE_HEADERS,
        "source": source,
        "solved": int(ok_mask.sum()),
    }
    return environment().get_template("summary.html.j2").render(**context)


def _batch_charts(frame: pd.DataFrame, ok_mask: pd.Series) -> list[tuple[str, Markup]]:
    """Throughput per GPU and TPOT per condition; a condition without a plan shows its status."""
    labels = list(frame["name"].astype(str))
    notes_per = [str(s) if not ok else "" for s, ok in zip(frame["status"], ok_mask, strict=True)]

    def column(name: str) -> list[Any]:
        return [_cell(v) if ok else None for v, ok in zip(frame[name], ok_mask, strict=True)]

    throughput = hbars("Output tokens/s per GPU", "tokens/s per GPU", labels, column("throughput_per_gpu"),
                       notes_per, unit=" tok/s/GPU")
    tpot = hbars("TPOT (ms per output token)", "ms", labels, column("tpot_ms"), notes_per, unit=" ms")
    return [("throughput", Markup(throughput)), ("tpot", Markup(tpot))]


def _rows(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    rows = []
    for _, row in frame.iterrows():
        ok = row["status"] in OK
        rows.append(
            {
                "xy": (_cell(row["tokens_per_s_per_user"]), _cell(row["throughput_per_gpu"])),
                "name": row["name"],
                "link": f"{row['plan_dir']}/report.html" if _cell(row["plan_dir"]) else None,
                "status": row["status"],
                "pareto": bool(row["pareto"]) if "pareto" in row and ok else False,
                "swept": [number(_cell(row[k])) for k in keys],
                "shape": _shape(row) if ok else "-",
                "cells": [_format(c, _cell(row[c])) for c in TABLE_NUMBERS],
                "error": _cell(row["error"]) or "",
            }
        )
    return rows


def _front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Pareto rows, one per distinct (per-user, per-GPU) figure, best per GPU first."""
    front: list[dict[str, Any]] = []
    seen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        if not r["pareto"]:
            continue
        if r["xy"] in seen:
            seen[r["xy"]]["same"] += 1
            continue
        seen[r["xy"]] = dict(r, same=0)
        front.append(seen[r["xy"]])
    front.sort(key=lambda r: -(r["xy"][1] or 0.0))
    return front


def _format(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "balance_max_mean":
        return f"{value:.3f}"
    if column == "solve_seconds":
        return f"{value:.2f}"
    return number(value)
