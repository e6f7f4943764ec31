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
from solver.document.plan import GpuCount, Plan, PlanMetrics, PoolPlan, PoolsBlock, SolverInfo
from solver.errors import InfeasibleError
from solver.inputs.condition import Condition
from solver.optimize.disaggregated import (
    DisaggChoice,
    DisaggTable,
    disagg_table,
    solve_by_cpsat,
    solve_by_enumeration,
)
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
    table, link = disagg_table(condition, prefill_candidates(condition), decode_candidates(condition))
    if method == "exhaustive":
        choice = solve_by_enumeration(table, link)
    else:
        choice = solve_by_cpsat(table, link, deadline)
    if choice is None:
        raise InfeasibleError(
            f"{condition.name}: no disaggregated plan: {len(table.prefill)} prefill and "
            f"{len(table.decode)} decode instances fit and meet their own SLO part, but no pair "
            "of them meets every SLO on this cluster's GPUs", ["serving.mode"])
    info = SolverInfo(method=method, objective=None, best_bound=None, gap=None,
                      candidates=len(table.prefill) + len(table.decode),
                      candidates_in_model=len(table.prefill) + len(table.decode),
                      candidates_removed={})
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
    p, d = table.prefill[choice.prefill], table.decode[choice.decode]
    n_p, n_d = choice.prefill_instances, choice.decode_instances
    prefill = _pool_plan(condition, PREFILL, p, n_p, choice.status, info)
    decode = _pool_plan(condition, DECODE, d, n_d, choice.status, info)
    link = PoolLink.of(condition)
    rate = min(n_p * p.requests_per_s, n_d * d.requests_per_s)
    used = n_p * p.gpus + n_d * d.gpus
    w = condition.workload
    xfer = kv_transfer_s(p.kv_bytes_per_gpu, d.kv_bytes_per_gpu, link)
    pools = PoolsBlock(
        prefill=PoolPlan(instances=n_p, gpus=n_p * p.gpus, first_gpu=0, plan=prefill,
                         capacity_requests_per_s=n_p * p.requests_per_s, requests_per_s=rate,
                         tokens_per_s_per_gpu=rate * w.input_tokens / (n_p * p.gpus)),
        decode=PoolPlan(instances=n_d, gpus=n_d * d.gpus, first_gpu=n_p * p.gpus, plan=decode,
                        capacity_requests_per_s=n_d * d.requests_per_s, requests_per_s=rate,
                        tokens_per_s_per_gpu=rate * w.output_tokens / (n_d * d.gpus)),
        link_gb_per_s=link.bytes_per_s / 1e9, kv_transfer_ms=xfer * 1e3,
        ttft_prefill_ms=p.ttft_s * 1e3, ttft_admission_ms=d.ttft_s * 1e3,
        requests_per_s=rate, requests_per_s_per_gpu=rate / used)
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
