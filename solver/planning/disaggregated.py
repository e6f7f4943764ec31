"""Disaggregated serving, planned: pool candidates -> CP-SAT (or the oracle) -> one plan document.

plan.json of a disaggregated plan keeps the top-level fields existing readers use, filled from the
decode pool (parallelism, batch_size = its max-num-seqs, stages, serving, devices numbered inside
the pool): that pool is what a reader sizing KV memory and concurrency cares about. `gpus` counts
the whole cluster and `metrics` are the request's: TTFT = prefill + KV transfer + decode
admission, TPOT = the decode step, throughput = R x output tokens, objective = GPUs / R (GPU
seconds per request, minimized). `pools` holds each pool's own plan document.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.document.building import build_plan
from solver.document.plan import (
    GpuCount,
    Plan,
    PlanMetrics,
    PoolDevice,
    PoolPlan,
    PoolsBlock,
    SolverInfo,
)
from solver.errors import InfeasibleError
from solver.inputs.condition import Condition
from solver.optimize.disaggregated import (
    DisaggChoice,
    DisaggTable,
    disagg_table,
    solve_by_cpsat,
    solve_by_enumeration,
)
from solver.optimize.pool_search import search_pool
from solver.optimize.pools import DECODE, PREFILL, PoolCandidate, decode_candidates, prefill_candidates
from solver.optimize.problem import expert_placements
from solver.physics.disaggregation import PoolLink, kv_transfer_s, pool_condition
from solver.physics.shapes import ParallelShape
from solver.runtime.limits import Deadline


@dataclass(frozen=True)
class DisaggSolution:
    plan: Plan
    table: DisaggTable
    choice: DisaggChoice


def solve_disaggregated(condition: Condition, method: str = "cp-sat",
                        deadline: Deadline | None = None) -> DisaggSolution:
    """The best disaggregated plan by goodput per GPU; InfeasibleError when no pair of pools fits."""
    if method == "exhaustive":  # the oracle: every candidate priced one by one, every pair
        prefill, decode = prefill_candidates(condition), decode_candidates(condition)
        counts = len(prefill), len(decode)
        table, link = disagg_table(condition, prefill, decode)
        choice = solve_by_enumeration(table, link)
    else:  # the candidates CP-SAT can choose (every undominated one; optimize/pool_search.py)
        searched = search_pool(condition, PREFILL), search_pool(condition, DECODE)
        counts = searched[0].num_candidates, searched[1].num_candidates
        table, link = disagg_table(condition, searched[0].candidates, searched[1].candidates)
        choice = solve_by_cpsat(table, link, deadline)
    if choice is None and deadline is not None and deadline.check("disaggregated pools"):
        raise InfeasibleError(f"{condition.name}: no disaggregated plan found within the time limit "
                              f"({deadline.limit_s:g} s; not proven infeasible)",
                              ["time limit: the search stopped before a plan was found (raise "
                               "--time-limit)"])
    if choice is None:
        pairs = "" if not all(counts) else ", but no pair of them meets every SLO on this cluster's GPUs"
        raise InfeasibleError(
            f"{condition.name}: no disaggregated plan: {counts[0]} prefill and "
            f"{counts[1]} decode instances fit and meet their own SLO part{pairs}",
            _binding(condition, counts))
    info = SolverInfo(method=method, objective=None, best_bound=None, gap=None,
                      candidates=sum(counts), candidates_in_model=sum(counts), candidates_removed={})
    return DisaggSolution(disaggregated_plan(condition, table, choice, info), table, choice)


def _pool_plan(condition: Condition, pool: str, c: PoolCandidate, instances: int, status: str,
               info: SolverInfo) -> Plan:
    cond = pool_condition(condition, pool, instances * c.gpus)
    placement = expert_placements(cond, {c.shape.ep})[0].get(c.shape.ep) if cond.model.is_moe else None
    shape = ParallelShape(**{**c.shape.as_dict(), "dp": instances})
    return build_plan(cond, shape, c.load, list(c.boundaries), status, info, placement)


def disaggregated_plan(condition: Condition, table: DisaggTable, choice: DisaggChoice,
                       info: SolverInfo) -> Plan:
    """The plan document of a choice (every number from the float evaluator)."""
    return pools_plan(condition, (table.prefill[choice.prefill], choice.prefill_instances),
                      (table.decode[choice.decode], choice.decode_instances), choice.status, info)


def device_map(condition: Condition, prefill: PoolPlan, decode: PoolPlan) -> list[PoolDevice]:
    """Every GPU of both pools by global id (prefill first): pool, instance, rank and role."""
    per_node = condition.cluster.gpus_per_node
    out = []
    for name, pool in ((PREFILL, prefill), (DECODE, decode)):
        per_instance = pool.plan.gpus.per_replica
        for d in pool.plan.devices:
            gpu = pool.first_gpu + d.gpu
            rank = d.gpu % per_instance
            out.append(PoolDevice(gpu=gpu, node=gpu // per_node, local_rank=gpu % per_node, pool=name,
                                  instance=d.gpu // per_instance, instance_rank=rank,
                                  role="head" if rank < per_node else "worker"))
    return out


def pools_plan(condition: Condition, prefill_pool: tuple[PoolCandidate, int],
               decode_pool: tuple[PoolCandidate, int], status: str, info: SolverInfo) -> Plan:
    """The plan document of n_p prefill and n_d decode instances (planned or checked)."""
    (p, n_p), (d, n_d) = prefill_pool, decode_pool
    prefill = _pool_plan(condition, PREFILL, p, n_p, status, info)
    decode = _pool_plan(condition, DECODE, d, n_d, status, info)
    link = PoolLink.of(condition)
    rate = min(n_p * p.requests_per_s, n_d * d.requests_per_s)
    used = n_p * p.gpus + n_d * d.gpus
    w = condition.workload
    xfer = kv_transfer_s(p.kv_bytes_per_gpu, d.kv_bytes_per_gpu, link)
    prefill_pool_plan = PoolPlan(instances=n_p, gpus=n_p * p.gpus, first_gpu=0, plan=prefill,
                                 capacity_requests_per_s=n_p * p.requests_per_s, requests_per_s=rate,
                                 tokens_per_s_per_gpu=rate * w.input_tokens / (n_p * p.gpus))
    decode_pool_plan = PoolPlan(instances=n_d, gpus=n_d * d.gpus, first_gpu=n_p * p.gpus, plan=decode,
                                capacity_requests_per_s=n_d * d.requests_per_s, requests_per_s=rate,
                                tokens_per_s_per_gpu=rate * w.output_tokens / (n_d * d.gpus))
    pools = PoolsBlock(
        prefill=prefill_pool_plan, decode=decode_pool_plan,
        link_gb_per_s=link.bytes_per_s / 1e9, link_latency_ms=link.latency_s * 1e3,
        kv_sent_bytes_per_gpu=p.kv_bytes_per_gpu, kv_received_bytes_per_gpu=d.kv_bytes_per_gpu,
        kv_transfer_ms=xfer * 1e3, ttft_prefill_ms=p.ttft_s * 1e3, ttft_admission_ms=d.ttft_s * 1e3,
        requests_per_s=rate, requests_per_s_per_gpu=rate / used,
        device_map=device_map(condition, prefill_pool_plan, decode_pool_plan))
    metrics = PlanMetrics(
        ttft_ms=(p.ttft_s + xfer + d.ttft_s) * 1e3, tpot_ms=d.tpot_s * 1e3,
        e2e_latency_ms=(p.ttft_mean_s + xfer + d.ttft_mean_s + (w.output_tokens - 1) * d.tpot_mean_s) * 1e3,
        throughput_tokens_per_s=rate * w.output_tokens,
        throughput_tokens_per_s_per_gpu=rate * w.output_tokens / used, objective=used / rate)
    g = condition.cluster.num_gpus
    gpus = GpuCount(available=g, used=used, idle=g - used, per_stage=decode.gpus.per_stage,
                    per_replica=decode.gpus.per_replica, model_parts=used)
    return decode.model_copy(update={"condition": condition.name, "gpus": gpus, "metrics": metrics,
                                     "pools": pools, "solver": info})


def _binding(condition: Condition, counts: tuple[int, int]) -> list[str]:
    """What excludes every pair: a pool with no instance at all is held back by memory or its own
    SLO part (decode: slo.tpot_ms; prefill: slo.ttft_ms); else the pairs' combined SLOs on the
    cluster's GPUs."""
    slo = condition.slo
    parts = {"prefill": ("slo.ttft_ms", slo.ttft_ms), "decode": ("slo.tpot_ms", slo.tpot_ms)}
    empty = [(pool, parts[pool]) for pool, n in zip((PREFILL, DECODE), counts, strict=True) if not n]
    if empty:
        return [f"{pool} pool: no instance fits in memory" + (f" and meets {key} ({value:g} ms)"
                                                              if value is not None else "")
                for pool, (key, value) in empty]
    cluster = condition.cluster
    if condition.serving.pool_spec.whole_nodes and cluster.num_gpus <= cluster.gpus_per_node:
        return ["serving.pools.whole_nodes: each pool takes whole nodes and the cluster has one "
                "node (a prefill and a decode pool need two; false lets them share it)"]
    return ["serving.mode: every pair of pool instances misses an SLO of the request (TTFT = "
            "prefill + KV transfer + admission, or e2e) on this cluster's GPUs"]
