"""`paraplan check`: grade a given plan (plan.json or a short YAML) against a condition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from solver.document.building import build_plan
from solver.document.plan import Plan, SolverInfo
from solver.document.verify import ConstraintCheck, verify_plan
from solver.inputs.condition import Condition
from solver.inputs.loading import read_mapping, validation_error
from solver.optimize.families import SLO_FAMILIES
from solver.optimize.problem import chunk_grid, expert_placements, utilization_grid
from solver.optimize.screening import balanced_boundaries
from solver.physics.continuous import CONTINUOUS, ContinuousLoad, steady_state
from solver.physics.cost import ExpertLayout
from solver.physics.disaggregation import aggregated_condition
from solver.physics.evaluate import evaluate_plan
from solver.physics.points import Load
from solver.physics.serving import StaticLoad
from solver.physics.shapes import ParallelShape, shape_violations
from solver.physics.speculative import tokens_per_step, verified_positions
from solver.review.check_pools import PoolsShortPlan, check_pools

_DEGREE = Field(default=1, ge=1, le=1_000_000)


class ShortPlan(BaseModel):
    """A hand-made plan: degrees, batch, and optionally how many layers each stage holds."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    tp: int = _DEGREE
    pp: int = _DEGREE
    dp: int = _DEGREE
    ep: int = _DEGREE
    etp: int = _DEGREE
    attn_dp: int = _DEGREE
    sp: int = _DEGREE
    batch_size: int = Field(ge=1, le=1_000_000)
    layers_per_stage: list[int] | None = None
    # continuous serving: max-num-batched-tokens and mean active / max-num-seqs (default: the
    # best operating point the condition's grids allow, as the planner would choose it)
    chunk_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    utilization: float | None = Field(default=None, gt=0, lt=1)


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    plan: Plan | None
    checks: list[ConstraintCheck]

    @property
    def violations(self) -> list[ConstraintCheck]:
        return [c for c in self.checks if not c.passed]


def _fail(name: str, value: object, limit: object) -> ConstraintCheck:
    return ConstraintCheck(name=name, value=str(value), limit=str(limit), passed=False)


def _boundaries(short: ShortPlan, num_layers: int) -> tuple[list[int] | None, list[ConstraintCheck]]:
    if short.pp > num_layers:
        return None, [_fail("layers.each_on_one_stage", f"pp={short.pp}", f"<= {num_layers} layers")]
    if short.layers_per_stage is None:
        return balanced_boundaries(num_layers, short.pp), []
    sizes = short.layers_per_stage
    problems = []
    if len(sizes) != short.pp:
        problems.append(_fail("layers.each_on_one_stage", f"{len(sizes)} stages listed", f"pp={short.pp}"))
    if any(n < 1 for n in sizes):
        problems.append(_fail("layers.each_on_one_stage", "a stage with no layers", ">= 1 per stage"))
    if sum(sizes) != num_layers:
        problems.append(_fail("layers.each_on_one_stage", f"{sum(sizes)} layers", f"= {num_layers}"))
    if problems:
        return None, problems
    bounds = [0]
    for n in sizes:
        bounds.append(bounds[-1] + n)
    return bounds, []


def _check_short(condition: Condition, short: ShortPlan) -> CheckResult:
    shape = ParallelShape(tp=short.tp, pp=short.pp, dp=short.dp, ep=short.ep, etp=short.etp,
                          attn_dp=short.attn_dp, sp=short.sp)
    bounds, problems = _boundaries(short, condition.model.num_hidden_layers)
    if shape.gpus_used > condition.cluster.num_gpus:  # do not build a device map for it
        bounds = None
        problems.append(_fail("gpu_count.available", shape.gpus_used, f"<= {condition.cluster.num_gpus}"))
    if bounds is None:
        rules = [_fail("divisibility_and_policy", p, "-") for p in shape_violations(shape, condition)]
        return CheckResult(plan=None, checks=problems + rules)
    info = SolverInfo(method="check", objective=None, best_bound=None, gap=None,
                      candidates=0, candidates_in_model=0, candidates_removed={})
    placement = None
    if condition.model.is_moe and not shape_violations(shape, condition):
        # the hand-made plan gets the best expert placement for its EP degree
        placement = expert_placements(condition, {shape.ep})[0].get(shape.ep)
    layout = ExpertLayout(placement.slots_per_gpu, placement.imbalance) if placement else None
    load = operating_point(condition, shape, short, bounds, layout)
    plan = build_plan(condition, shape, load, bounds, "checked", info, placement)
    return CheckResult(plan=plan, checks=verify_plan(condition, plan))


def operating_point(condition: Condition, shape: ParallelShape, short: ShortPlan, bounds: list[int],
                    layout: ExpertLayout | None) -> Load:
    """The load a hand-made plan is graded at: its static batch; or, serving continuously, its
    max-num-seqs at the chunk budget and utilization it names, the rest chosen from the
    condition's grids as the planner would: the best objective among the points that meet every
    SLO (or, when none does, the best objective)."""
    if condition.serving.mode != CONTINUOUS:
        return StaticLoad(short.batch_size)
    w = condition.workload
    chunks = [short.chunk_tokens] if short.chunk_tokens else chunk_grid(condition)
    levels = [short.utilization] if short.utilization else utilization_grid(condition)
    loads = [ContinuousLoad(short.batch_size, u, t) for t in chunks for u in levels]
    steady = [x for x in loads
              if steady_state(x, shape.pp, w.input_tokens, w.output_tokens,
                              tokens_per_step(condition), verified_positions(condition)).feasible]
    best: tuple[bool, float, int] | None = None
    for i, load in enumerate(steady):
        _, stages, metrics = evaluate_plan(condition, shape, load, bounds, layout)
        missed = any(not row[3] for f in SLO_FAMILIES for row in f.verify(condition, stages, metrics))
        key = (missed, metrics.objective, i)
        best = key if best is None or key < best else best
    return steady[best[2]] if best is not None else loads[0]


def load_plan_file(path: Path) -> Plan | ShortPlan | PoolsShortPlan:
    data: dict[str, Any] = read_mapping(path)
    model: type[BaseModel] = (Plan if "schema_version" in data else
                              PoolsShortPlan if "prefill" in data or "decode" in data else ShortPlan)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise validation_error(exc, str(path), model) from None


def check_given(condition: Condition, given: Plan | ShortPlan | PoolsShortPlan) -> CheckResult:
    """Grade a loaded plan (plan.json, a short plan or a disaggregated short plan) against a
    condition."""
    if condition.mixed is not None:  # a mixed cluster's replicas block (review/mixed_check.py)
        from solver.review.mixed_check import check_mixed

        return CheckResult(plan=None, checks=check_mixed(condition, given))  # type: ignore[arg-type]
    if isinstance(given, PoolsShortPlan):
        plan, rows = check_pools(condition, given)
        return CheckResult(plan=plan, checks=rows)
    one_pool = isinstance(given, ShortPlan) or given.pools is None
    if one_pool and condition.serving.mode in ("disaggregated", "auto"):
        condition = aggregated_condition(condition)  # one replica shape: graded as aggregated
    if isinstance(given, ShortPlan):
        return _check_short(condition, given)
    # a plan may be graded against another condition than its own: that is the point of check
    return CheckResult(plan=given, checks=verify_plan(condition, given))


def check_plan(condition: Condition, plan_path: Path) -> CheckResult:
    return check_given(condition, load_plan_file(plan_path))
