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
# (summary column, table header) of the numbers every batch and sweep table shows
TABLE_NUMBERS = (
    ("batch", "batch"),
    ("gpus", "GPUs used / avail."),
    ("ttft_ms", "TTFT ms"),
    ("tpot_ms", "TPOT ms"),
    ("throughput", "tok/s"),
    ("throughput_per_gpu", "tok/s /GPU"),
    ("tokens_per_s_per_user", "tok/s /user"),
    ("requests_per_s", "req/s"),
    ("cost", "cost /1M tok"),
    ("balance_max_mean", "balance max/mean"),
)  # solve seconds and the other balances: summary.csv
ERROR_SHOWN = 120  # characters of an error the table shows; the rest opens on a click


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


def _point_label(row: pd.Series, keys: list[str]) -> str:
    swept = ", ".join(f"{k}={_cell(row[k])}" for k in keys)
    cost = _cell(row["cost_per_million_tokens_usd"])
    price = f", ${cost:,.2f}/1M tokens" if cost is not None else ""
    return (f"{swept}: {_shape(row)}, batch {row['batch']}, {row['gpus_used']} GPUs, "
            f"TPOT {row['tpot_ms']:.2f} ms, TTFT {row['ttft_ms']:.0f} ms, "
            f"{row['throughput']:,.0f} tok/s ({row['throughput_per_gpu']:.1f}/GPU){price}")


def pareto_svg(frame: pd.DataFrame, keys: list[str], title: str) -> str:
    """The front of the sweep: each user's speed against the deployment's capacity (the front also
    weighs GPUs used and the cost of a token, so it is marked, not drawn as a staircase)."""
    ok = frame[frame["status"].isin(OK)]
    points = [Point(float(row["tokens_per_s_per_user"]), float(row["throughput"]),
                    _point_label(row, keys), short=f"{_shape(row)} x{row['gpus_used']} GPUs",
                    front=bool(row["pareto"])) for _, row in ok.iterrows()]
    return pareto_chart(points, title, "tokens/s per user (1000 / TPOT ms)",
                        "capacity: output tokens/s of the deployment", staircase=False)


def cost_svg(frame: pd.DataFrame, keys: list[str], title: str) -> str:
    """Capacity against the cost of a million output tokens ($ with a GPU-hour price, else
    GPU-hours): what each GPU count buys."""
    ok = frame[frame["status"].isin(OK)]
    priced = ok["cost_per_million_tokens_usd"].notna().all() and len(ok) > 0
    column = "cost_per_million_tokens_usd" if priced else "gpu_hours_per_million_tokens"
    points = [Point(float(row["throughput"]), float(row[column]), _point_label(row, keys),
                    short=f"{row['gpus_used']} GPUs", front=bool(row["pareto"]))
              for _, row in ok.iterrows() if _cell(row[column]) is not None]
    unit = "$ per million output tokens" if priced else "GPU-hours per million output tokens"
    return pareto_chart(points, title, "capacity: output tokens/s of the deployment", unit,
                        staircase=False)


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
        chart_list.append(("cost", Markup(cost_svg(frame, keys, "Capacity and its cost"))))
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
        "numbers": [header for _, header in TABLE_NUMBERS],
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
                "cells": [_format(c, _value(row, c)) for c, _ in TABLE_NUMBERS],
                **_error(str(_cell(row["error"]) or "")),
            }
        )
    return rows


def _value(row: pd.Series, column: str) -> Any:
    if column == "gpus":
        used, available = _cell(row["gpus_used"]), _cell(row["gpus_available"])
        return None if used is None else f"{used} / {available}"
    if column == "cost":
        usd = _cell(row["cost_per_million_tokens_usd"])
        hours = _cell(row["gpu_hours_per_million_tokens"])
        return (f"${usd:,.2f}" if usd is not None else
                f"{hours:,.3g} GPU-h" if hours is not None else None)
    return _cell(row[column])


def _error(text: str) -> dict[str, str]:
    """An error as the table shows it: the first words (cut at a word, never mid-word) and, when
    longer, the whole text behind a click (<details>, no script)."""
    if len(text) <= ERROR_SHOWN:
        return {"error": text, "error_short": ""}
    cut = text[:ERROR_SHOWN].rsplit(" ", 1)[0] if " " in text[:ERROR_SHOWN] else text[:ERROR_SHOWN]
    return {"error": text, "error_short": cut.rstrip(",;:") + " …"}


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
    if isinstance(value, str):
        return value
    if column == "balance_max_mean":
        return f"{value:.3f}"
    if column == "solve_seconds":
        return f"{value:.2f}"
    return number(value)
