"""report.html of a disaggregated plan: the request's cards, the pools, the TTFT parts and the KV
transfer, each pool's balance charts and device map (global GPU ids), the constraints and, for
serving.mode auto, the comparison with aggregated serving. Every number comes from the planner's
PoolsSolution; this module only chooses and formats."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from solver.inputs.condition import Condition
from solver.planning.modes import PoolSolution, PoolsSolution
from solver.render.html import environment, flatten
from solver.render.plan_page import balance_rows, plan_charts
from solver.render.pool_facts import (
    COMPARISON_HEADERS,
    DEVICE_HEADERS,
    POOL_HEADERS,
    accounting_lines,
    comparison_rows,
    comparison_sentence,
    device_rows,
    pool_rows,
    request_lines,
    settings_words,
    shape_words,
)


def _plain(line: str) -> str:
    return line.removeprefix("- ").replace("**", "")


def pools_html(condition: Condition, solution: PoolsSolution) -> str:
    plan = solution.plan
    pools, m, slo = plan.pools, plan.metrics, condition.slo
    assert pools is not None
    limits = {"ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms, "e2e_latency_ms": slo.e2e_latency_ms}
    comparison = plan.comparison
    context = {
        "title": f"Plan: {plan.condition}", "plan": plan, "condition": condition,
        "summary": (f"Prefill pool {pools.prefill.instances} x {shape_words(pools.prefill.plan)}, decode "
                    f"pool {pools.decode.instances} x {shape_words(pools.decode.plan)}."),
        "cards": [
            ("TTFT", f"{m.ttft_ms:,.1f} ms", f"prefill {pools.ttft_prefill_ms:,.1f} + transfer "
             f"{pools.kv_transfer_ms:,.2f} + admission {pools.ttft_admission_ms:,.1f}"),
            ("TPOT", f"{m.tpot_ms:,.2f} ms", "the decode pool's step"),
            ("goodput", f"{pools.requests_per_s_per_gpu:,.4g} req/s/GPU",
             f"{pools.requests_per_s:,.4g} requests/s on {plan.gpus.used} GPUs"),
            ("prefill", f"{pools.prefill.tokens_per_s_per_gpu:,.0f} tok/s", "input tokens per GPU"),
            ("decode", f"{pools.decode.tokens_per_s_per_gpu:,.1f} tok/s", "output tokens per GPU"),
            ("KV transfer", f"{pools.kv_transfer_ms:,.2f} ms", f"link {pools.link_gb_per_s:g} GB/s per GPU"),
        ],
        "comparison": comparison_rows(comparison) if comparison else None,
        "comparison_sentence": _plain(comparison_sentence(comparison)) if comparison else "",
        "comparison_headers": COMPARISON_HEADERS, "pool_headers": POOL_HEADERS,
        "device_headers": DEVICE_HEADERS, "pool_rows": pool_rows(pools),
        "request_lines": [_plain(x) for x in request_lines(plan, condition.workload.output_tokens, limits)],
        "accounting": [_plain(x) for x in accounting_lines(plan)],
        "pools": [_pool(solution, pool) for pool in solution.pools],
        "checks": solution.checks, "failed": [c for c in solution.checks if not c.passed],
        "condition_rows": flatten(condition.raw),
    }
    return environment().get_template("pools.html.j2").render(**context)


def _pool(solution: PoolsSolution, pool: PoolSolution) -> dict[str, Any]:
    rows, more = device_rows(solution.plan, pool.name)
    return {
        "name": pool.name, "title": f"{pool.name.capitalize()} pool",
        "shape": f"{pool.pool.instances} instance(s) of {shape_words(pool.plan)} = {pool.pool.gpus} GPUs",
        "settings": settings_words(pool.name, pool.pool),
        "charts": {k: Markup(v) for k, v in plan_charts(pool.condition, pool.plan).items()},
        "balance": balance_rows(pool.figures), "devices": rows, "more": more,
    }
