"""solve(): condition -> problem -> optimizer -> plan -> verification. The library entry point."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from solver.document.building import build_plan
from solver.document.plan import Plan, SolverInfo
from solver.document.verify import ConstraintCheck, verify_plan, violations
from solver.errors import InputError, VerificationError
from solver.inputs.condition import Condition
from solver.inputs.serving import AUTO, DISAGGREGATED
from solver.optimize.optimizer import by_cpsat, by_oracle
from solver.optimize.problem import PlanningProblem, build_problem
from solver.optimize.screening import Screening
from solver.optimize.settings import SolverSettings
from solver.optimize.tables import OBJECTIVE_SCALE
from solver.planning.figures import PlanFigures, plan_figures
from solver.planning.runner_ups import RunnerUp, runner_ups
from solver.runtime.interrupts import keeps_python_sigint
from solver.runtime.limits import Deadline

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Solution:
    """The verified plan and every number the reports show (they only format them)."""

    plan: Plan
    checks: list[ConstraintCheck]
    problem: PlanningProblem
    screening: Screening | None
    figures: PlanFigures  # the plan evaluated as written, its balance, the model's sizes
    seconds: float = 0.0  # wall time of solve(): for the console, never in plan.json
    settings: SolverSettings = field(default_factory=SolverSettings)  # with the run's deadline
    runner_ups: tuple[RunnerUp, ...] | None = None  # best plan of every other family; None: not asked


@keeps_python_sigint
def solve(condition: Condition, method: str = "cp-sat", settings: SolverSettings | None = None,
          *, with_runner_ups: bool = False) -> Solution:
    """Plan one condition. `settings.deadline` (started from `time_limit_s` when absent) is the
    run's wall-clock safety net; deterministic work limits decide the answer. `with_runner_ups`:
    also the best plan of every other shape family (the reports' runner-up table), searched within
    the same deadline; off for the internal re-solves (relaxations, regret)."""
    if condition.serving.mode in (DISAGGREGATED, AUTO):
        raise InputError(condition.source, "serving.mode", f"{condition.serving.mode}: planned by "
                         "solver.planning.modes.plan_serving (as paraplan solve, check, batch and "
                         "sweep do)")
    started = time.perf_counter()
    settings = (settings or SolverSettings()).with_deadline()
    if condition.mixed is not None:  # hardware.pools: planning/mixed_planner.py (issue 16)
        from solver.planning.mixed_planner import solve_mixed

        return solve_mixed(condition, method, settings.deadline)  # type: ignore[return-value]
    problem = build_problem(condition, settings.deadline, settings.placement_work)
    outcome = by_oracle(problem, settings) if method == "exhaustive" else by_cpsat(problem, settings)
    limits = list(outcome.limits)
    if problem.placement_work.skipped_for_budget and not problem.placement_work.deadline_hit:
        limits.append("work limit: expert placement")
    assert settings.deadline is not None
    limits += [f"time limit: {stage}" for stage in settings.deadline.hits]
    table = outcome.table
    info = _solver_info(method, outcome.objective, outcome.bound, problem, outcome.in_model,
                        outcome.screening, limits, table.form_scale)
    plan = build_plan(condition, table.costs.shape, problem.candidates.load(table.index),
                      outcome.boundaries, outcome.status, info,
                      problem.placements.get(table.costs.shape.ep))
    checks = verify_plan(condition, plan)
    failed = violations(checks)
    if failed:
        names = ", ".join(f"{c.name} ({c.value} vs {c.limit})" for c in failed)
        raise VerificationError(f"internal error: the verifier rejected the solver's plan: {names}")
    others = None
    if with_runner_ups:
        others = tuple(runner_ups(problem, plan, settings.deadline))
        plan = _with_time_limits(plan, settings.deadline)
    return Solution(plan, checks, problem, outcome.screening, plan_figures(plan, problem),
                    time.perf_counter() - started, settings, others)


def _with_time_limits(plan: Plan, deadline: Deadline) -> Plan:
    """The plan with the stages the run's deadline cut after it was built (the runner-up table)."""
    hits = [f"time limit: {stage}" for stage in deadline.hits]
    missing = [h for h in hits if h not in plan.solver.limits_hit]
    if not missing:
        return plan
    solver = plan.solver.model_copy(update={"limits_hit": [*plan.solver.limits_hit, *missing]})
    return plan.model_copy(update={"solver": solver})


def _solver_info(method: str, objective: int, bound: int | None, problem: PlanningProblem,
                 in_model: int, screening: Screening | None, limits: list[str],
                 form_scale: int = 1) -> SolverInfo:
    gap = None
    if bound is not None and objective:
        gap = max(0.0, (objective - bound) / objective)
    return SolverInfo(
        method=method,
        objective=objective / (OBJECTIVE_SCALE * form_scale),
        best_bound=None if bound is None else bound / (OBJECTIVE_SCALE * form_scale),
        gap=gap,
        candidates=problem.num_candidates,
        candidates_in_model=in_model,
        candidates_removed=dict(sorted(screening.removed.items())) if screening else {},
        limits_hit=limits,
    )
