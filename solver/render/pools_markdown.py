"""plan.md of a disaggregated plan: the request and its TTFT parts, each pool with its own layer
map, memory, constraints, balance and device map (global GPU ids), the GPU accounting, and for
serving.mode auto the comparison with aggregated serving. Every number comes from the planner's
PoolsSolution; this module only formats."""

from __future__ import annotations

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.planning.modes import PoolSolution, PoolsSolution
from solver.render.condition_markdown import assumptions_section, condition_section, model_section
from solver.render.display import for_markdown
from solver.render.markdown import table
from solver.render.plan_markdown import PlanMarkdown, comparison_section
from solver.render.pool_facts import (
    DEVICE_HEADERS,
    POOL_HEADERS,
    accounting_lines,
    device_rows,
    pool_rows,
    request_lines,
    settings_words,
    shape_words,
)


def pools_markdown(condition: Condition, solution: PoolsSolution) -> str:
    """plan.md of a disaggregated plan."""
    plan = solution.plan
    sections = [
        _summary(plan), comparison_section(plan), condition_section(condition),
        model_section(condition, solution.decode.figures.model), _pools(solution, condition),
        *(s for pool in solution.pools for s in _pool(condition, solution, pool)),
        _constraints(solution), assumptions_section(condition), _solver(solution),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _summary(plan: Plan) -> str:
    pools, m = plan.pools, plan.metrics
    assert pools is not None
    p, d = pools.prefill, pools.decode
    return (f"# Plan: {for_markdown(plan.condition)}\n\n"
            f"**Disaggregated serving** on {plan.gpus.used} of {plan.gpus.available} x "
            f"{for_markdown(plan.gpu)}: prefill pool {p.instances} x {shape_words(p.plan)} "
            f"({p.gpus} GPUs), decode pool {d.instances} x {shape_words(d.plan)} ({d.gpus} GPUs). "
            f"Status: **{plan.status}** ({plan.solver.method}).\n\n"
            f"{pools.requests_per_s:,.4g} requests/s, **{pools.requests_per_s_per_gpu:,.4g} requests/s "
            f"per GPU** meeting every SLO. TTFT {m.ttft_ms:,.1f} ms (prefill {pools.ttft_prefill_ms:,.1f} "
            f"+ KV transfer {pools.kv_transfer_ms:,.2f} + admission {pools.ttft_admission_ms:,.1f}), "
            f"TPOT {m.tpot_ms:,.2f} ms, end-to-end {m.e2e_latency_ms:,.0f} ms, throughput "
            f"{m.throughput_tokens_per_s:,.0f} output tokens/s ({m.throughput_tokens_per_s_per_gpu:,.1f} "
            f"per GPU); prefill {p.tokens_per_s_per_gpu:,.0f} input tokens/s per GPU, decode "
            f"{d.tokens_per_s_per_gpu:,.1f} output tokens/s per GPU.")


def _pools(solution: PoolsSolution, condition: Condition) -> str:
    plan, slo = solution.plan, condition.slo
    assert plan.pools is not None
    limits = {"ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms, "e2e_latency_ms": slo.e2e_latency_ms}
    return "\n".join([
        "## Pools and the request", "",
        "Prefill instances run the prompts (continuous batching with one output token), send each "
        "prompt's KV cache to a decode instance, which generates the rest; both pools carry the "
        "same rate R (docs/design.md, \"Disaggregated serving\").", "",
        table(POOL_HEADERS, pool_rows(plan.pools)), "",
        *request_lines(plan, condition.workload.output_tokens, limits), "",
        "GPU accounting:", "", *accounting_lines(plan),
    ])


def _pool(condition: Condition, solution: PoolsSolution, pool: PoolSolution) -> list[str]:
    plan, p = solution.plan, pool.plan.parallelism
    rows, more = device_rows(plan, pool.name)
    metrics = pool.plan.metrics
    unit = "input" if pool.name == "prefill" else "output"
    head = "\n".join([
        f"## {pool.name.capitalize()} pool", "",
        f"- Shape per instance: {shape_words(pool.plan)} (tp={p.tp}, pp={p.pp}, ep={p.ep}, etp={p.etp}, "
        f"attn_dp={p.attn_dp}, sp={p.sp}), {pool.plan.gpus.per_replica} GPUs; {pool.pool.instances} "
        f"instance(s) = {pool.pool.gpus} GPUs.",
        f"- Engine settings: {settings_words(pool.name, pool.pool)}.",
        f"- Its own metrics (the pool as a cluster of its own): TTFT {metrics.ttft_ms:,.2f} ms, "
        + (f"TPOT {metrics.tpot_ms:,.3f} ms, " if pool.name == "decode" else "")
        + f"capacity {pool.pool.capacity_requests_per_s:,.4g} requests/s, at the rate "
        f"{pool.pool.tokens_per_s_per_gpu:,.1f} {unit} tokens/s per GPU.",
    ])
    devices = "### Device map (global GPU ids)\n\n" + table(DEVICE_HEADERS, rows) + (
        f"\n\n{more} more GPUs of this pool in plan.json (pools.device_map) and balance.csv." if more else "")
    return [head, *PlanMarkdown(pool.condition, pool).pool_sections(), devices]


def _constraints(solution: PoolsSolution) -> str:
    rows = [[c.name, c.value, c.limit, "pass" if c.passed else "**FAIL**", c.detail]
            for c in solution.checks if not c.name.startswith(("prefill.", "decode."))]
    return ("## Hard constraints of the whole plan (re-checked by the solver-free verifier)\n\n"
            "Each pool's own rows are under its pool.\n\n"
            + table(["constraint", "value", "limit", "result", "note"], rows))


def _solver(solution: PoolsSolution) -> str:
    s = solution.plan.solver
    return "\n".join([
        "## Solver", "",
        f"- method {s.method}; pool candidates (instance shape x operating point that fit and meet "
        f"their own SLO part): {s.candidates}",
        "- 'optimal' means proven optimal goodput per GPU over the pool candidates (instance shapes "
        "of a node's divisors or whole nodes, the chunk, max-num-seqs and utilization grids) and "
        "every integer instance count, for this cost model.",
    ])
