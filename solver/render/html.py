"""report.html: the reviewer's page for a plan, a batch or a sweep.

Self-contained: one HTML file with inline CSS and inline SVG charts (solver/render/charts.py), no script,
no font, no image or stylesheet fetched from anywhere, so it opens the same in any browser, offline,
or as an e-mail attachment. Pages are rendered from Jinja2 templates in solver/render/templates/ with
autoescaping on; only the SVG produced by charts.py (which escapes its own text) is marked safe.
"""

from __future__ import annotations

import json
import math
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from solver.document.plan import Plan
from solver.document.verify import ConstraintCheck
from solver.inputs.condition import Condition
from solver.optimize.problem import PlanningProblem
from solver.render import charts

if TYPE_CHECKING:  # batch and sweep pages get DataFrames; a plan page never imports pandas
    import pandas as pd

MB = 1e6


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("solver.render", "templates"),  # package data (importlib.resources)
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = number
    return env


def number(value: Any, digits: int = 3) -> str:
    """Table cell text: thousands separators, a few significant digits, '-' for missing."""
    if value is None or _is_pandas_na(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(digits - 1, 1)}f}"
    return str(value)


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict) and data:
        rows: list[tuple[str, str]] = []
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    text = json.dumps(data) if isinstance(data, (list, dict)) else str(data)
    return [(prefix, text if len(text) <= 160 else text[:157] + "...")]


# ---- plan ----------------------------------------------------------------------------------------


def plan_charts(condition: Condition, plan: Plan) -> dict[str, str]:
    """The balance as pictures (compute, memory, communication per GPU) and the decode timeline."""
    devices = plan.devices
    stages = [d.stage for d in devices]
    usable = condition.cluster.usable_memory_bytes / 1e9
    bars = charts.per_gpu_bars
    return {
        "prefill_compute": bars(
            "Prefill compute per GPU (ms, one micro-batch)",
            "ms",
            [charts.Series("prefill compute", [d.prefill_compute_ms for d in devices])],
            groups=stages,
            unit=" ms",
        ),
        "decode_compute": bars(
            "Decode compute per GPU (ms, one step)",
            "ms",
            [charts.Series("decode compute", [d.decode_compute_ms for d in devices])],
            groups=stages,
            unit=" ms",
        ),
        "memory": bars(
            "Memory per GPU (GB)",
            "GB",
            [
                charts.Series(
                    "weights", [d.memory_breakdown_gb.weights for d in devices], charts.color(0)
                ),
                charts.Series(
                    "KV cache", [d.memory_breakdown_gb.kv_cache for d in devices], charts.color(1)
                ),
                charts.Series(
                    "activations",
                    [d.memory_breakdown_gb.activations for d in devices],
                    charts.color(2),
                ),
                charts.Series(
                    "overhead", [d.memory_breakdown_gb.overhead for d in devices], charts.color(3)
                ),
            ],
            stacked=True,
            limit=(usable, f"usable {usable:.1f} GB"),
            unit=" GB",
        ),
        "prefill_comm": bars(
            "Prefill communication per GPU (MB sent, one micro-batch)",
            "MB",
            [charts.Series("prefill communication", [d.prefill_comm_bytes / MB for d in devices])],
            groups=stages,
            unit=" MB",
        ),
        "decode_comm": bars(
            "Decode communication per GPU (MB sent, one step)",
            "MB",
            [charts.Series("decode communication", [d.decode_comm_bytes / MB for d in devices])],
            groups=stages,
            unit=" MB",
        ),
        "experts": bars(
            "Share of its EP group's routed tokens per GPU (expert load)",
            "share",
            [charts.Series("routed-token share", [d.expert_token_share or 0.0 for d in devices])],
            groups=stages,
        )
        if condition.model.is_moe and any(d.expert_token_share for d in devices)
        else "",
        "timeline": charts.pipeline_timeline(
            [s.decode_ms for s in plan.stages],
            plan.microbatches,
            plan.metrics.tpot_ms,
            title=f"One decode round: {len(plan.stages)} stage(s) x {plan.microbatches} "
            "micro-batch(es)",
        ),
    }


def _balance_rows(plan: Plan) -> list[list[Any]]:
    def row(name: str, values: list[float], unit: str) -> list[Any]:
        mean = sum(values) / len(values) if values else 0.0
        peak = max(values, default=0.0)
        return [name, unit, peak, mean, peak / mean if mean else 1.0]

    d = plan.devices
    return [
        row("prefill compute", [x.prefill_compute_ms for x in d], "ms"),
        row("decode compute", [x.decode_compute_ms for x in d], "ms"),
        row("memory", [x.memory_gb for x in d], "GB"),
        row("prefill communication", [x.prefill_comm_bytes / MB for x in d], "MB"),
        row("decode communication", [x.decode_comm_bytes / MB for x in d], "MB"),
    ]


def plan_html(
    condition: Condition,
    plan: Plan,
    checks: list[ConstraintCheck],
    problem: PlanningProblem | None = None,
) -> str:
    m, p, g = plan.metrics, plan.parallelism, plan.gpus
    cards = [
        ("TTFT", f"{m.ttft_ms:,.1f} ms", _slo(condition.slo.ttft_ms)),
        ("TPOT", f"{m.tpot_ms:,.2f} ms", _slo(condition.slo.tpot_ms)),
        ("end-to-end", f"{m.e2e_latency_ms:,.0f} ms", _slo(condition.slo.e2e_latency_ms)),
        (
            "throughput",
            f"{m.throughput_tokens_per_s:,.0f} tok/s",
            "output tokens, whole deployment",
        ),
        ("per GPU", f"{m.throughput_tokens_per_s_per_gpu:,.1f} tok/s", f"{g.used} GPUs used"),
        ("per user", f"{1000 / m.tpot_ms:,.1f} tok/s" if m.tpot_ms > 0 else "-", "1000 / TPOT"),
    ]
    stage_rows = [
        [
            s.stage,
            f"{s.first_layer}-{s.last_layer}",
            s.num_layers,
            ("embedding " if s.holds_embedding else "") + ("LM head" if s.holds_lm_head else ""),
            s.prefill_ms,
            s.decode_ms,
            s.memory_gb,
        ]
        for s in plan.stages
    ]
    s = plan.solver
    solver_rows = [
        ("method", s.method),
        ("status", plan.status),
        ("limits hit", "; ".join(s.limits_hit) or "none"),
        ("objective", number(s.objective, 6)),
        ("best bound", number(s.best_bound, 6)),
        ("gap", "-" if s.gap is None else f"{s.gap:.2%}"),
        ("candidates (shape x batch)", f"{s.candidates:,}"),
        ("in the CP-SAT model", f"{s.candidates_in_model:,}"),
        (
            "removed by proven bounds",
            ", ".join(f"{k}: {v}" for k, v in s.candidates_removed.items()) or "-",
        ),
    ]
    ep = plan.expert_placement
    placement = (
        None
        if ep is None
        else [
            ("method", ep.method),
            ("proven optimal", "yes" if ep.proven_optimal else "no"),
            ("redundant experts", ep.redundant_experts),
            ("slots per GPU", ep.slots_per_gpu),
            ("max/mean token load (planned)", f"{ep.max_over_mean_token_load:.4f}"),
            ("max/mean token load (greedy EPLB)", f"{ep.greedy_max_over_mean_token_load:.4f}"),
        ]
    )
    context = {
        "title": f"Plan: {plan.condition}",
        "plan": plan,
        "condition": condition,
        "shape": p.shape().label,
        "cards": cards,
        "degrees": [(n, getattr(p, n)) for n in ("tp", "pp", "dp", "ep", "etp", "attn_dp", "sp")],
        "gpus": g,
        "checks": checks,
        "failed": [c for c in checks if not c.passed],
        "charts": {k: Markup(v) for k, v in plan_charts(condition, plan).items()},
        "balance": _balance_rows(plan),
        "stage_rows": stage_rows,
        "condition_rows": _flatten(condition.raw),
        "solver_rows": solver_rows,
        "placement": placement,
        "fixed": condition.cluster.fixed,
    }
    return environment().get_template("plan.html.j2").render(**context)


def _slo(limit: float | None) -> str:
    return f"SLO {limit:,g} ms" if limit else "no SLO"


# ---- batch and sweep -----------------------------------------------------------------------------


def _shape(row: pd.Series) -> str:
    from solver.physics.shapes import ParallelShape

    try:
        values = {d: int(row[d]) for d in ("tp", "pp", "dp", "ep", "etp", "attn_dp", "sp")}
    except (TypeError, ValueError):
        return "-"
    return ParallelShape(**values).label


def _is_pandas_na(value: Any) -> bool:
    """pandas.NA without importing pandas: a value can only be NA when pandas is loaded."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA


def _cell(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def pareto_svg(frame: pd.DataFrame, keys: list[str], title: str) -> str:
    ok = frame[frame["status"].isin(("optimal", "feasible"))]
    points = []
    for _, row in ok.iterrows():
        swept = ", ".join(f"{k}={_cell(row[k])}" for k in keys)
        label = (
            f"{swept}: {_shape(row)}, batch {row['batch']}, {row['gpus_used']} GPUs, "
            f"TPOT {row['tpot_ms']:.2f} ms, TTFT {row['ttft_ms']:.0f} ms, "
            f"{row['throughput_per_gpu']:.1f} tok/s/GPU"
        )
        points.append(
            charts.Point(
                float(row["tokens_per_s_per_user"]),
                float(row["throughput_per_gpu"]),
                label,
                short=f"{_shape(row)}, batch {row['batch']}",
                front=bool(row["pareto"]),
            )
        )
    return charts.pareto_chart(
        points, title, "tokens/s per user (1000 / TPOT ms)", "output tokens/s per GPU"
    )


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
    counts = frame["status"].value_counts().to_dict()
    ok_mask = frame["status"].isin(("optimal", "feasible"))
    chart_list: list[tuple[str, Markup]] = []
    if pareto:
        chart_list.append(("pareto", Markup(pareto)))
    if kind == "batch":
        labels = list(frame["name"].astype(str))
        notes_per = [
            str(s) if not ok else "" for s, ok in zip(frame["status"], ok_mask, strict=True)
        ]
        per_gpu = [
            _cell(v) if ok else None
            for v, ok in zip(frame["throughput_per_gpu"], ok_mask, strict=True)
        ]
        tpot = [_cell(v) if ok else None for v, ok in zip(frame["tpot_ms"], ok_mask, strict=True)]
        chart_list.append(
            (
                "throughput",
                Markup(
                    charts.hbars(
                        "Output tokens/s per GPU",
                        "tokens/s per GPU",
                        labels,
                        per_gpu,
                        notes_per,
                        unit=" tok/s/GPU",
                    )
                ),
            )
        )
        chart_list.append(
            (
                "tpot",
                Markup(
                    charts.hbars(
                        "TPOT (ms per output token)", "ms", labels, tpot, notes_per, unit=" ms"
                    )
                ),
            )
        )
    rows = []
    for _, row in frame.iterrows():
        ok = row["status"] in ("optimal", "feasible")
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
    front: list[dict[str, Any]] = []  # one row per distinct (per-user, per-GPU) figure
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
    context = {
        "title": title,
        "kind": kind,
        "seconds": seconds,
        "notes": notes,
        "axes": axes or [],
        "keys": keys,
        "counts": counts,
        "total": len(frame),
        "charts": chart_list,
        "rows": rows,
        "front": front,
        "numbers": TABLE_HEADERS,
        "source": source,
        "solved": int(ok_mask.sum()),
    }
    return environment().get_template("summary.html.j2").render(**context)


def _format(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "balance_max_mean":
        return f"{value:.3f}"
    if column == "solve_seconds":
        return f"{value:.2f}"
    return number(value)


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
