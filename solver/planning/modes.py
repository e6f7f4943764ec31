"""Every serving mode planned for `paraplan solve`: continuous and static batching by the planner
(planner.solve), disaggregated serving by planning/disaggregated.py, auto by
planning/architectures.py. A disaggregated plan comes with what its reports show: each pool's
verified plan under its own condition and its figures (balance, formulas' terms), the whole
plan's verifier rows; the reports only format them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from solver.document.plan import Plan, PoolPlan
from solver.document.verify import ConstraintCheck, verify_plan, violations
from solver.errors import VerificationError
from solver.inputs.condition import Condition
from solver.inputs.serving import AUTO, DISAGGREGATED
from solver.optimize.pools import DECODE, PREFILL
from solver.optimize.problem import expert_placements, layouts_of
from solver.optimize.settings import SolverSettings
from solver.physics.cost import CostModel
from solver.physics.disaggregation import pool_condition
from solver.physics.evaluate import Normalizers
from solver.planning.architectures import compare_architectures
from solver.planning.disaggregated import solve_disaggregated
from solver.planning.figures import PlanFigures, figures_of
from solver.planning.planner import Solution, solve


@dataclass(frozen=True)
class PoolSolution:
    """One pool of a disaggregated plan, as its reports show it."""

    name: str  # prefill | decode
    condition: Condition  # the pool as a cluster of its own (physics/disaggregation.pool_condition)
    pool: PoolPlan
    checks: list[ConstraintCheck]  # the verifier's rows of this pool (names without the pool prefix)
    figures: PlanFigures
    runner_ups: None = None  # a pool has no runner-up table

    @property
    def plan(self) -> Plan:
        return self.pool.plan


@dataclass(frozen=True)
class PoolsSolution:
    """A verified disaggregated plan and every number its reports show."""

    plan: Plan  # plan.pools is set; plan.comparison with serving.mode auto
    checks: list[ConstraintCheck]  # every row of the whole plan (document/verify_pools.py)
    prefill: PoolSolution
    decode: PoolSolution
    seconds: float = 0.0
    settings: SolverSettings = field(default_factory=SolverSettings)
    runner_ups: None = None  # the pools have no runner-up table

    @property
    def pools(self) -> tuple[PoolSolution, PoolSolution]:
        return self.prefill, self.decode


def pool_solution(condition: Condition, plan: Plan, name: str, checks: list[ConstraintCheck]) -> PoolSolution:
    """One pool's figures under its own condition (the expert placement searched for its EP)."""
    assert plan.pools is not None
    pool = plan.pools.prefill if name == PREFILL else plan.pools.decode
    cond = pool_condition(condition, name, pool.gpus)
    ep = pool.plan.parallelism.ep
    placements = expert_placements(cond, {ep})[0] if cond.model.is_moe else {}
    model = CostModel(cond, layouts_of(placements))
    figures = figures_of(pool.plan, cond, model.arch, Normalizers.of(cond, model), placements.get(ep))
    prefix = f"{name}."
    own = [c.model_copy(update={"name": c.name[len(prefix):]}) for c in checks if c.name.startswith(prefix)]
    return PoolSolution(name, cond, pool, own, figures)


def pools_solution(condition: Condition, plan: Plan, settings: SolverSettings,
                   started: float) -> PoolsSolution:
    """Verify a disaggregated plan (an internal error when the verifier rejects it) and gather
    its pools' figures."""
    checks = verify_plan(condition, plan)
    failed = violations(checks)
    if failed:
        names = ", ".join(f"{c.name} ({c.value} vs {c.limit})" for c in failed)
        raise VerificationError(f"internal error: the verifier rejected the solver's plan: {names}")
    return PoolsSolution(plan, checks, pool_solution(condition, plan, PREFILL, checks),
                         pool_solution(condition, plan, DECODE, checks),
                         time.perf_counter() - started, settings)


def plan_serving(condition: Condition, method: str = "cp-sat", settings: SolverSettings | None = None,
                 *, with_runner_ups: bool = False) -> Solution | PoolsSolution:
    """Plan a condition in its serving mode. An `auto` plan whose aggregated side won is the
    aggregated Solution (solved under goodput_condition) with the comparison block."""
    started = time.perf_counter()
    settings = (settings or SolverSettings()).with_deadline()
    mode = condition.serving.mode
    if mode == DISAGGREGATED:
        plan = solve_disaggregated(condition, method, settings.deadline).plan
        return pools_solution(condition, plan, settings, started)
    if mode != AUTO:
        return solve(condition, method, settings, with_runner_ups=with_runner_ups)
    choice = compare_architectures(condition, method, settings, with_runner_ups=with_runner_ups)
    if choice.plan.pools is not None:
        return pools_solution(condition, choice.plan, settings, started)
    assert choice.aggregated_solution is not None
    return replace(choice.aggregated_solution, plan=choice.plan,
                   checks=verify_plan(condition, choice.plan),
                   seconds=time.perf_counter() - started)
