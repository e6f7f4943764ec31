"""`paraplan check` of a hand-made disaggregated plan: a prefill and a decode pool, each a shape
with its instance count and engine settings. The plan is built with the planner's own code
(optimize/pools.PoolEvaluator prices one instance, planning/disaggregated.pools_plan builds the
document) and graded by the same verifier as a planned one (document/verify_pools.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from solver.document.plan import Plan, SolverInfo
from solver.document.verify import ConstraintCheck, verify_plan
from solver.inputs.condition import Condition
from solver.optimize.pools import DECODE, PREFILL, PoolCandidate, PoolEvaluator, instance_condition
from solver.optimize.problem import chunk_grid, utilization_grid
from solver.physics.continuous import DecodeLoad, decode_state, steady_state
from solver.physics.disaggregation import (
    PoolLink,
    aggregated_condition,
    kv_transfer_s,
    prefill_condition,
    prefill_load,
    prefill_slots,
)
from solver.physics.points import Load
from solver.physics.shapes import ParallelShape, shape_violations
from solver.planning.disaggregated import pools_plan

_DEGREE = Field(default=1, ge=1, le=1_000_000)
_FORBID = ConfigDict(frozen=True, extra="forbid", strict=True)


class PoolShort(BaseModel):
    """One pool of a hand-made plan: the instance's degrees and how many instances."""

    model_config = _FORBID
    tp: int = _DEGREE
    pp: int = _DEGREE
    ep: int = _DEGREE
    etp: int = _DEGREE
    attn_dp: int = _DEGREE
    sp: int = _DEGREE
    instances: int = Field(ge=1, le=1_000_000)
    utilization: float | None = Field(default=None, gt=0, lt=1)  # default: the best on the grid

    def shape(self) -> ParallelShape:
        return ParallelShape(tp=self.tp, pp=self.pp, dp=1, ep=self.ep, etp=self.etp,
                             attn_dp=self.attn_dp, sp=self.sp)


class PrefillShort(PoolShort):
    """batch_size: prompts an instance holds at once (C); chunk_tokens: its max-num-batched-tokens
    T (C = max(1, floor(ceil(I / T) T / I))). Neither: the best chunk of the condition's grid;
    batch_size alone: T = C x I."""

    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    chunk_tokens: int | None = Field(default=None, ge=1, le=10_000_000)


class DecodeShort(PoolShort):
    batch_size: int = Field(ge=1, le=1_000_000)  # max-num-seqs per instance


class PoolsShortPlan(BaseModel):
    """A hand-made disaggregated plan (YAML: `prefill: {...}` and `decode: {...}`)."""

    model_config = _FORBID
    prefill: PrefillShort
    decode: DecodeShort


def _fail(name: str, value: object, limit: object, detail: str = "") -> ConstraintCheck:
    return ConstraintCheck(name=name, value=str(value), limit=str(limit), passed=False, detail=detail)


def _rule_rows(condition: Condition, short: PoolsShortPlan) -> list[ConstraintCheck]:
    """What makes the plan impossible to build: a broken parallelism rule, more GPUs than the
    cluster has, a prefill batch its chunk budget cannot hold."""
    instance = instance_condition(condition)  # one instance: the cluster's GPU count rules apply below
    rows = [_fail(f"{name}.divisibility_and_policy", problem, "-")
            for name, pool in ((PREFILL, short.prefill), (DECODE, short.decode))
            for problem in shape_violations(pool.shape(), instance)]
    p, d = short.prefill, short.decode
    used = p.instances * p.shape().gpus_used + d.instances * d.shape().gpus_used
    if used > condition.cluster.num_gpus:
        rows.append(_fail("gpu_count.available", f"{p.instances} x {p.shape().gpus_used} + {d.instances} x "
                          f"{d.shape().gpus_used} = {used} GPUs", f"<= {condition.cluster.num_gpus}"))
    i = condition.workload.input_tokens
    if p.batch_size is not None and p.chunk_tokens is not None and \
            prefill_slots(p.chunk_tokens, i) != p.batch_size:
        rows.append(_fail("prefill.batch_size", p.batch_size, f"= {prefill_slots(p.chunk_tokens, i)}",
                          f"a prefill instance holds max(1, floor(ceil(I / T) T / I)) prompts at "
                          f"max-num-batched-tokens T = {p.chunk_tokens} and I = {i}"))
    return rows


def _prefill_loads(condition: Condition, short: PrefillShort) -> list[Load]:
    i = condition.workload.input_tokens
    if short.chunk_tokens is not None:
        chunks = [short.chunk_tokens]
    elif short.batch_size is not None:
        chunks = [short.batch_size * i]
    else:
        chunks = chunk_grid(condition)
    levels = [short.utilization] if short.utilization else utilization_grid(condition)
    shape = short.shape()
    loads = [prefill_load(t, u, i) for t in chunks for u in levels]
    return [x for x in loads if x.slots >= shape.attn_dp and steady_state(x, shape.pp, i, 1).feasible]


def _decode_loads(condition: Condition, short: DecodeShort) -> list[Load]:
    levels = [short.utilization] if short.utilization else utilization_grid(condition)
    loads = [DecodeLoad(short.batch_size, u) for u in levels]
    o = condition.workload.output_tokens
    return [x for x in loads if short.batch_size >= short.attn_dp
            and decode_state(x, short.pp, o).feasible]


def _priced(condition: Condition, pool: str, short: PoolShort,
            loads: list[Load]) -> list[tuple[PoolCandidate, bool]]:
    """Each operating point of one instance: the candidate and whether its memory fits."""
    cond = instance_condition(prefill_condition(condition) if pool == PREFILL
                              else aggregated_condition(condition))
    evaluator = PoolEvaluator(pool, cond, [short.shape()])
    out = []
    for load in loads:
        priced = evaluator.evaluate(short.shape(), load)
        out.append((evaluator.candidate(short.shape(), load, priced), priced.fits))
    return out


def _best_pair(condition: Condition, short: PoolsShortPlan, prefill: list[tuple[PoolCandidate, bool]],
               decode: list[tuple[PoolCandidate, bool]]) -> tuple[PoolCandidate, PoolCandidate]:
    """The operating points the planner would pick for these instances: every SLO met and memory
    fitting first, then the highest goodput."""
    n_p, n_d = short.prefill.instances, short.decode.instances
    slo, link = condition.slo, PoolLink.of(condition)
    o = condition.workload.output_tokens

    def key(pair: tuple[tuple[PoolCandidate, bool], tuple[PoolCandidate, bool]]) -> tuple[bool, bool, float]:
        (p, p_fits), (d, d_fits) = pair
        xfer = kv_transfer_s(p.kv_bytes_per_gpu, d.kv_bytes_per_gpu, link)
        ttft = (p.ttft_s + xfer + d.ttft_s) * 1e3
        e2e = (p.ttft_mean_s + xfer + d.ttft_mean_s + (o - 1) * d.tpot_mean_s) * 1e3
        missed = any(limit is not None and value > limit for value, limit in (
            (ttft, slo.ttft_ms), (d.tpot_s * 1e3, slo.tpot_ms), (e2e, slo.e2e_latency_ms)))
        rate = min(n_p * p.requests_per_s, n_d * d.requests_per_s)
        return (not (p_fits and d_fits), missed, -rate)

    (p, _), (d, _) = min(((a, b) for a in prefill for b in decode), key=key)
    return p, d


def check_pools(condition: Condition, short: PoolsShortPlan) -> tuple[Plan | None, list[ConstraintCheck]]:
    """The plan document and the verifier's rows; no plan when it cannot be built (the rows say why)."""
    rows = _rule_rows(condition, short)
    if rows:
        return None, rows
    prefill = _priced(condition, PREFILL, short.prefill, _prefill_loads(condition, short.prefill))
    decode = _priced(condition, DECODE, short.decode, _decode_loads(condition, short.decode))
    if not prefill or not decode:
        pool, what = (PREFILL, "prompts at once >= attn_dp and a steady state") if not prefill else (
            DECODE, "max-num-seqs >= attn_dp and a steady state")
        return None, [_fail(f"{pool}.operating_point", "none", what, "no operating point of the "
                            "condition's grids (or the plan's settings) serves this instance")]
    p, d = _best_pair(condition, short, prefill, decode)
    info = SolverInfo(method="check", objective=None, best_bound=None, gap=None, candidates=0,
                      candidates_in_model=0, candidates_removed={})
    plan = pools_plan(condition, (p, short.prefill.instances), (d, short.decode.instances), "checked", info)
    return plan, verify_plan(condition, plan)
