"""Solver-free re-check of a disaggregated plan: each pool's own plan document through the
aggregated verifier (rules, layer map, experts, memory, metrics) under that pool's condition, then
the GPU accounting over both pools, rate matching and the request's SLOs with the KV transfer
recomputed (physics/disaggregation.py)."""

from __future__ import annotations

from solver.document.plan import Plan, PoolPlan
from solver.document.verify import ConstraintCheck, evaluate_plan_document, verify_plan
from solver.inputs.condition import Condition
from solver.physics.cost import CostModel
from solver.physics.disaggregation import PoolLink, kv_bytes_per_gpu, kv_transfer_s, pool_condition


def _row(name: str, value: object, limit: object, passed: bool, detail: str = "") -> ConstraintCheck:
    return ConstraintCheck(name=name, value=str(value), limit=str(limit), passed=passed, detail=detail)


def _pool_rows(condition: Condition, name: str, pool: PoolPlan) -> list[ConstraintCheck]:
    cond = pool_condition(condition, name, pool.gpus)
    rows = [r.model_copy(update={"name": f"{name}.{r.name}"}) for r in verify_plan(cond, pool.plan)]
    per = pool.plan.gpus.per_replica
    rows.append(_row(f"{name}.instances", f"{pool.instances} x {per} GPUs", f"= {pool.gpus} GPUs",
                     pool.instances * per == pool.gpus and pool.plan.parallelism.dp == pool.instances))
    return rows


def _accounting(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    pools, cluster = plan.pools, condition.cluster
    assert pools is not None
    p, d = pools.prefill, pools.decode
    used = p.gpus + d.gpus
    rows = [_row("gpu_count.pools_disjoint", f"prefill {p.first_gpu}..{p.first_gpu + p.gpus - 1}, "
                 f"decode {d.first_gpu}..{d.first_gpu + d.gpus - 1}", "each GPU in one pool",
                 p.first_gpu == 0 and d.first_gpu == p.gpus),
            _row("gpu_count.available", used, f"<= {cluster.num_gpus}", used <= cluster.num_gpus)]
    if cluster.fixed and condition.policy.use_all_gpus:
        rows.append(_row("gpu_count.all_used", used, f"= {cluster.num_gpus}", used == cluster.num_gpus,
                         "policy.use_all_gpus"))
    rows.append(_device_map_row(plan))
    if condition.serving.pool_spec.whole_nodes:
        whole = all(x.gpus % cluster.gpus_per_node == 0 for x in (p, d))
        rows.append(_row("gpu_count.whole_node_pools", f"{p.gpus} + {d.gpus} GPUs",
                         f"multiples of {cluster.gpus_per_node}", whole, "serving.pools.whole_nodes"))
    return rows


def _device_map_row(plan: Plan) -> ConstraintCheck:
    """Every GPU of both pools listed once, by global id, in the pool and instance it serves."""
    pools = plan.pools
    assert pools is not None
    expected = [(name, pool.first_gpu + d.gpu, d.gpu // pool.plan.gpus.per_replica)
                for name, pool in (("prefill", pools.prefill), ("decode", pools.decode))
                for d in pool.plan.devices]
    listed = [(d.pool, d.gpu, d.instance) for d in pools.device_map]
    return _row("gpu_count.device_map", f"{len(listed)} GPUs listed",
                f"each of the {len(expected)} pool GPUs once, in its pool and instance",
                sorted(listed, key=lambda x: x[1]) == expected)


def _request_rows(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    pools = plan.pools
    assert pools is not None
    p_cond = pool_condition(condition, "prefill", pools.prefill.gpus)
    d_cond = pool_condition(condition, "decode", pools.decode.gpus)
    _, _, pm = evaluate_plan_document(p_cond, pools.prefill.plan)
    _, _, dm = evaluate_plan_document(d_cond, pools.decode.plan)
    i = condition.workload.input_tokens
    send = kv_bytes_per_gpu(CostModel(p_cond), pools.prefill.plan.parallelism.shape(), i)
    receive = kv_bytes_per_gpu(CostModel(d_cond), pools.decode.plan.parallelism.shape(), i)
    xfer = kv_transfer_s(send, receive, PoolLink.of(condition))
    rate = pools.requests_per_s
    rows = [_row("rate.prefill", f"{rate:.4g} req/s", f"<= {pm.requests_per_s:.4g} req/s",
                 rate <= pm.requests_per_s * (1 + 1e-9), "the prefill pool's capacity at its point"),
            _row("rate.decode", f"{rate:.4g} req/s", f"<= {dm.requests_per_s:.4g} req/s",
                 rate <= dm.requests_per_s * (1 + 1e-9), "the decode pool's capacity at its point")]
    ttft = (pm.ttft_s + xfer + dm.ttft_s) * 1e3
    o = condition.workload.output_tokens
    e2e = (pm.ttft_mean_s + xfer + dm.ttft_mean_s + (o - 1) * dm.tpot_mean_s) * 1e3
    slo = condition.slo
    for key, value, bound in (("slo.ttft_ms", ttft, slo.ttft_ms),
                              ("slo.tpot_ms", dm.tpot_s * 1e3, slo.tpot_ms),
                              ("slo.e2e_latency_ms", e2e, slo.e2e_latency_ms)):
        if bound is not None:
            rows.append(_row(key, f"{value:.2f} ms", f"<= {bound:g} ms", value <= bound * (1 + 1e-9)))
    same = abs(pools.kv_transfer_ms - xfer * 1e3) <= 1e-6 * max(1.0, xfer * 1e3) and abs(
        plan.metrics.ttft_ms - ttft) <= 1e-6 * max(1.0, ttft)
    rows.append(_row("metrics.recomputed", "transfer and TTFT match the cost model" if same else
                     "transfer or TTFT differ from the cost model", "equal", same))
    return rows


def verify_pools(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    """Every rule of a disaggregated plan (plan.pools is set)."""
    assert plan.pools is not None
    rows = _pool_rows(condition, "prefill", plan.pools.prefill)
    rows += _pool_rows(condition, "decode", plan.pools.decode)
    return rows + _accounting(condition, plan) + _request_rows(condition, plan)
