"""report.html of one plan: summary cards, constraints, balance charts, the decode timeline, the
layer map, the expert placement, the condition and the solver. Every number comes from the
planner's Solution; this module only chooses, converts units and formats."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from solver.document.plan import Plan
from solver.inputs.condition import DEGREE_NAMES, Condition
from solver.planning.figures import PlanFigures
from solver.planning.planner import Solution
from solver.render.bar_charts import Series, per_gpu_bars
from solver.render.html import environment, flatten, number
from solver.render.markdown import close_call_note, family_label, load_label, why_it_lost
from solver.render.pool_facts import COMPARISON_HEADERS, comparison_rows, comparison_sentence
from solver.render.svg import color
from solver.render.timeline_chart import pipeline_timeline

MB = 1e6


def plan_html(condition: Condition, solution: Solution) -> str:
    plan, checks = solution.plan, solution.checks
    p = plan.parallelism
    context = {
        "title": f"Plan: {plan.condition}",
        "plan": plan,
        "condition": condition,
        "shape": p.shape().label,
        "load": load_label(plan),
        "cards": _cards(condition, plan, solution.figures),
        "degrees": [(n, getattr(p, n)) for n in DEGREE_NAMES],
        "gpus": plan.gpus,
        "checks": checks,
        "failed": [c for c in checks if not c.passed],
        "charts": {k: Markup(v) for k, v in plan_charts(condition, plan).items()},
        "balance": balance_rows(solution.figures),
        "stage_rows": _stage_rows(plan),
        "condition_rows": flatten(condition.raw),
        "solver_rows": _solver_rows(plan),
        "placement": _placement_rows(plan),
        "fixed": condition.cluster.fixed,
        "runner_ups": _runner_up_rows(solution),
        "close_call": close_call_note(solution.runner_ups),
        "searched_runner_ups": solution.runner_ups is not None,
        "comparison": comparison_rows(plan.comparison) if plan.comparison else None,
        "comparison_sentence": comparison_sentence(plan.comparison).replace("**", "")
        if plan.comparison else "",
        "comparison_headers": COMPARISON_HEADERS,
    }
    return environment().get_template("plan.html.j2").render(**context)


def _cards(condition: Condition, plan: Plan, figures: PlanFigures) -> list[tuple[str, str, str]]:
    m, per_user = plan.metrics, figures.tokens_per_s_per_user
    return [
        ("TTFT", f"{m.ttft_ms:,.1f} ms", _slo(condition.slo.ttft_ms)),
        ("TPOT", f"{m.tpot_ms:,.2f} ms", _slo(condition.slo.tpot_ms)),
        ("end-to-end", f"{m.e2e_latency_ms:,.0f} ms", _slo(condition.slo.e2e_latency_ms)),
        ("throughput", f"{m.throughput_tokens_per_s:,.0f} tok/s", "output tokens, whole deployment"),
        ("per GPU", f"{m.throughput_tokens_per_s_per_gpu:,.1f} tok/s", f"{plan.gpus.used} GPUs used"),
        ("per user", f"{per_user:,.1f} tok/s" if per_user is not None else "-", "1000 / TPOT"),
    ]


def _runner_up_rows(solution: Solution) -> list[dict[str, Any]]:
    """One row per runner-up: the nearest rivals of the plan's family, then the other families."""
    rows = []
    for r in solution.runner_ups or ():
        m = r.metrics
        cells = ([r.shape.label, r.batch_size, m.ttft_s * 1e3, m.tpot_s * 1e3,
                  m.throughput_tokens_per_s_per_gpu, m.objective] if r.shape and m else ["-"] * 6)
        rows.append({"family": family_label(r), "cells": cells, "why": why_it_lost(r),
                     "close": r.close_call})
    return rows


def _slo(limit: float | None) -> str:
    return f"SLO {limit:,g} ms" if limit else "no SLO"


def _stage_rows(plan: Plan) -> list[list[Any]]:
    return [[s.stage, f"{s.first_layer}-{s.last_layer}", s.num_layers,
             ("embedding " if s.holds_embedding else "") + ("LM head" if s.holds_lm_head else ""),
             s.prefill_ms, s.decode_ms, s.memory_gb] for s in plan.stages]


def _solver_rows(plan: Plan) -> list[tuple[str, str]]:
    s = plan.solver
    return [
        ("method", s.method),
        ("status", plan.status),
        ("limits hit", "; ".join(s.limits_hit) or "none"),
        ("objective", number(s.objective, 6)),
        ("best bound", number(s.best_bound, 6)),
        ("gap", "-" if s.gap is None else f"{s.gap:.2%}"),
        ("candidates (shape x batch)", f"{s.candidates:,}"),
        ("in the CP-SAT model", f"{s.candidates_in_model:,}"),
        ("removed by proven bounds", ", ".join(f"{k}: {v}" for k, v in s.candidates_removed.items()) or "-"),
    ]


def _placement_rows(plan: Plan) -> list[tuple[str, Any]] | None:
    ep = plan.expert_placement
    if ep is None:
        return None
    return [
        ("method", ep.method),
        ("proven optimal", "yes" if ep.proven_optimal else "no"),
        ("redundant experts", ep.redundant_experts),
        ("slots per GPU", ep.slots_per_gpu),
        ("max/mean token load (planned)", f"{ep.max_over_mean_token_load:.4f}"),
        ("max/mean token load (greedy EPLB)", f"{ep.greedy_max_over_mean_token_load:.4f}"),
    ]


def balance_rows(figures: PlanFigures) -> list[list[Any]]:
    """[quantity, unit, max, mean, max/mean] of every per-GPU balance quantity."""
    rows = []
    for name, quantity, unit, scale in (
        ("prefill compute", "prefill_compute_ms", "ms", 1.0),
        ("decode compute", "decode_compute_ms", "ms", 1.0),
        ("memory", "memory_gb", "GB", 1.0),
        ("prefill communication", "prefill_comm_bytes", "MB", MB),
        ("decode communication", "decode_comm_bytes", "MB", MB),
    ):
        spread = figures.per_gpu[quantity]
        rows.append([name, unit, spread.max / scale, spread.mean / scale, spread.max_over_mean])
    return rows


def plan_charts(condition: Condition, plan: Plan) -> dict[str, str]:
    """The balance as pictures (compute, memory, communication per GPU) and the decode timeline."""
    devices = plan.devices
    stages = [d.stage for d in devices]

    def bars(title: str, y_label: str, name: str, values: list[float], unit: str = "") -> str:
        return per_gpu_bars(title, y_label, [Series(name, values)], groups=stages, unit=unit)

    moe_loads = condition.model.is_moe and any(d.expert_token_share for d in devices)
    return {
        "prefill_compute": bars("Prefill compute per GPU (ms, one micro-batch)", "ms", "prefill compute",
                                [d.prefill_compute_ms for d in devices], " ms"),
        "decode_compute": bars("Decode compute per GPU (ms, one step)", "ms", "decode compute",
                               [d.decode_compute_ms for d in devices], " ms"),
        "memory": _memory_chart(condition, plan),
        "prefill_comm": bars("Prefill communication per GPU (MB sent, one micro-batch)", "MB",
                             "prefill communication", [d.prefill_comm_bytes / MB for d in devices], " MB"),
        "decode_comm": bars("Decode communication per GPU (MB sent, one step)", "MB",
                            "decode communication", [d.decode_comm_bytes / MB for d in devices], " MB"),
        "experts": bars("Share of its EP group's routed tokens per GPU (expert load)", "share",
                        "routed-token share", [d.expert_token_share or 0.0 for d in devices])
        if moe_loads else "",
        "timeline": pipeline_timeline(
            [s.decode_ms for s in plan.stages], plan.microbatches, plan.metrics.tpot_ms,
            title=f"One decode round: {len(plan.stages)} stage(s) x {plan.microbatches} micro-batch(es)",
        ),
    }


def _memory_chart(condition: Condition, plan: Plan) -> str:
    """Stacked memory per GPU against the usable memory."""
    devices = plan.devices
    usable = condition.cluster.usable_memory_bytes / 1e9
    parts = [("weights", [d.memory_breakdown_gb.weights for d in devices]),
             ("KV cache", [d.memory_breakdown_gb.kv_cache for d in devices]),
             ("activations", [d.memory_breakdown_gb.activations for d in devices]),
             ("overhead", [d.memory_breakdown_gb.overhead for d in devices])]
    return per_gpu_bars("Memory per GPU (GB)", "GB", [Series(name, values, color(k))
                                                     for k, (name, values) in enumerate(parts)],
                        stacked=True, limit=(usable, f"usable {usable:.1f} GB"), unit=" GB")
