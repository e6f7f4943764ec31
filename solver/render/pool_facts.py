"""What plan.md, report.html and the console say about a disaggregated plan and about serving.mode
auto's comparison, as rows and sentences: each pool, the KV transfer, the request's TTFT parts,
the GPU accounting and the device map. Every number comes from the plan document (the planner's
float evaluator); this module only formats."""

from __future__ import annotations

from typing import Any

from solver.document.plan import Comparison, Plan, PoolPlan, PoolsBlock

MB = 1e6
POOL_HEADERS = ["pool", "shape", "instances", "GPUs", "global GPU ids", "engine settings per instance",
                "capacity req/s", "carries req/s", "tokens/s per GPU", "latency"]
DEVICE_HEADERS = ["gpu", "node", "local", "pool", "instance", "instance rank", "role", "stage",
                  "tp rank", "ep rank", "layers", "memory GB"]
COMPARISON_HEADERS = ["architecture", "status", "goodput req/s per GPU", "output tok/s per GPU", "plan"]


def shape_words(plan: Plan) -> str:
    s = plan.parallelism
    return (f"TP{s.tp} x PP{s.pp} x EP{s.ep} x ETP{s.etp} x attn-DP{s.attn_dp}"
            + (f" x SP{s.sp}" if s.sp > 1 else ""))


def settings_words(name: str, pool: PoolPlan) -> str:
    """The engine's knobs and operating point of one instance."""
    s = pool.plan.serving
    assert s is not None
    u = f"utilization {s.utilization:.2f}" if s.utilization is not None else ""
    if name == "prefill":
        return f"max-num-batched-tokens {s.chunk_tokens}, {s.max_num_seqs} prompt(s) at once, {u}"
    return f"max-num-seqs {s.max_num_seqs}, {u}"


def _gpu_range(pool: PoolPlan) -> str:
    return f"{pool.first_gpu}-{pool.first_gpu + pool.gpus - 1}"


def pool_rows(pools: PoolsBlock) -> list[list[Any]]:
    """One row per pool (POOL_HEADERS)."""
    p, d = pools.prefill, pools.decode
    return [
        ["prefill", shape_words(p.plan), p.instances, p.gpus, _gpu_range(p), settings_words("prefill", p),
         p.capacity_requests_per_s, p.requests_per_s, f"{p.tokens_per_s_per_gpu:,.0f} input",
         f"TTFT in the pool {pools.ttft_prefill_ms:,.1f} ms"],
        ["decode", shape_words(d.plan), d.instances, d.gpus, _gpu_range(d), settings_words("decode", d),
         d.capacity_requests_per_s, d.requests_per_s, f"{d.tokens_per_s_per_gpu:,.1f} output",
         f"TPOT {d.plan.metrics.tpot_ms:,.2f} ms, admission {pools.ttft_admission_ms:,.1f} ms"],
    ]


def transfer_line(pools: PoolsBlock) -> str:
    return (f"KV transfer = max(sent, received) / link + latency = max("
            f"{pools.kv_sent_bytes_per_gpu / MB:,.2f}, {pools.kv_received_bytes_per_gpu / MB:,.2f}) MB / "
            f"{pools.link_gb_per_s:g} GB/s + "
            f"{pools.link_latency_ms:,.3f} ms = **{pools.kv_transfer_ms:,.2f} ms** (one prompt's KV; "
            "every prefill GPU holding it sends its own shard while every decode GPU keeping it "
            "receives its own, in parallel)")


def request_lines(plan: Plan, output_tokens: int, slo: dict[str, float | None]) -> list[str]:
    """The request's metrics as the sums they are, with the numbers (markdown bullets)."""
    pools, m = plan.pools, plan.metrics
    assert pools is not None
    p, d = pools.prefill, pools.decode

    def limit(key: str) -> str:
        return f" (SLO {slo[key]:g} ms)" if slo.get(key) else ""

    return [
        f"- TTFT = prefill + KV transfer + decode admission = {pools.ttft_prefill_ms:,.2f} + "
        f"{pools.kv_transfer_ms:,.2f} + {pools.ttft_admission_ms:,.2f} = **{m.ttft_ms:,.2f} ms**"
        + limit("ttft_ms"),
        f"- {transfer_line(pools)}",
        f"- TPOT = the decode instance's step = **{m.tpot_ms:,.3f} ms**" + limit("tpot_ms"),
        f"- e2e (mean) = mean TTFT parts + ({output_tokens} - 1) x mean TPOT = **{m.e2e_latency_ms:,.1f} ms**"
        + limit("e2e_latency_ms"),
        f"- rate R = min(prefill capacity, decode capacity) = min({p.instances} x "
        f"{p.capacity_requests_per_s / p.instances:,.4g}, {d.instances} x "
        f"{d.capacity_requests_per_s / d.instances:,.4g}) = **{pools.requests_per_s:,.4g} requests/s**; "
        f"goodput per GPU = R / {p.gpus + d.gpus} GPUs = **{pools.requests_per_s_per_gpu:,.4g}**",
        f"- throughput = R x {output_tokens} = {m.throughput_tokens_per_s:,.0f} output tokens/s "
        f"({m.throughput_tokens_per_s_per_gpu:,.1f} per GPU of both pools); the prefill pool reads "
        f"{p.tokens_per_s_per_gpu:,.0f} input tokens/s per GPU, the decode pool writes "
        f"{d.tokens_per_s_per_gpu:,.1f} output tokens/s per GPU",
    ]


def accounting_lines(plan: Plan) -> list[str]:
    pools, g = plan.pools, plan.gpus
    assert pools is not None
    lines = [f"- {name}: {pool.instances} instance(s) x {pool.plan.gpus.per_replica} GPUs = "
             f"{pool.gpus} GPUs (global ids {_gpu_range(pool)})"
             for name, pool in (("prefill", pools.prefill), ("decode", pools.decode))]
    idle = f", {g.idle} idle (allowed by policy)" if g.idle else ""
    return [*lines, f"- **{g.used} GPUs used** of {g.available}{idle}; each GPU serves exactly one "
            "pool and one instance (plan.json: pools.device_map)"]


def device_rows(plan: Plan, pool_name: str, limit: int = 64) -> tuple[list[list[Any]], int]:
    """The pool's GPUs by global id (DEVICE_HEADERS), at most `limit`; and how many were left out."""
    pools = plan.pools
    assert pools is not None
    pool = pools.prefill if pool_name == "prefill" else pools.decode
    mapped = [m for m in pools.device_map if m.pool == pool_name]
    rows = [[m.gpu, m.node, m.local_rank, m.pool, m.instance, m.instance_rank, m.role, d.stage,
             d.tp_rank, d.ep_rank, f"{d.first_layer}-{d.last_layer}", d.memory_gb]
            for m, d in zip(mapped, pool.plan.devices, strict=True)]
    return rows[:limit], max(0, len(rows) - limit)


def comparison_rows(comparison: Comparison) -> list[list[Any]]:
    return [[r.architecture + (" (chosen)" if r.architecture == comparison.winner else ""), r.status,
             r.requests_per_s_per_gpu, r.output_tokens_per_s_per_gpu, r.summary]
            for r in comparison.results]


def comparison_sentence(comparison: Comparison) -> str:
    rates = {r.architecture: r.requests_per_s_per_gpu for r in comparison.results}
    others = [f"{name} {rate:,.4g}" if rate is not None else f"{name} infeasible"
              for name, rate in rates.items() if name != comparison.winner]
    return (f"serving.mode auto: **{comparison.winner}** wins on goodput per GPU (requests/s per GPU "
            f"meeting every SLO): {rates[comparison.winner]:,.4g} against " + ", ".join(others) + ".")
