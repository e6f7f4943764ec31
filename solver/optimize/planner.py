"""solve(): condition -> problem -> optimizer -> plan -> verification. The library entry point."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from solver.document.plan import Plan, SolverInfo, build_plan
from solver.document.verify import ConstraintCheck, verify_plan, violations
from solver.errors import InfeasibleError, VerificationError
from solver.inputs.condition import DEGREE_NAMES, Condition
from solver.optimize.alternatives import RunnerUp, runner_ups
from solver.optimize.exhaustive import solve_exhaustive
from solver.optimize.figures import PlanFigures, plan_figures
from solver.optimize.formulation import (
    CpSatResult,
    PlacementModel,
    Screening,
    SolverSettings,
    _bounds,
    binding_families,
    presolve_candidates,
)
from solver.optimize.problem import PlanningProblem, build_problem
from solver.optimize.tables import OBJECTIVE_SCALE, CandidateTable
from solver.physics.shapes import ParallelShape, enumerate_shapes, shape_violations
from solver.runtime.interrupts import keeps_python_sigint
from solver.runtime.limits import CANONICAL_SOLVE_WORK, Deadline

log = logging.getLogger(__name__)

REMOVAL_REASONS = {
    "memory": "per-GPU memory (weights + KV cache + activations + overhead) exceeds the usable memory",
    "ttft_slo": "TTFT above slo.ttft_ms even with a perfectly balanced pipeline",
    "tpot_slo": "TPOT above slo.tpot_ms even with a perfectly balanced pipeline",
    "e2e_slo": "end-to-end latency above slo.e2e_latency_ms even when perfectly balanced",
    "dominated": "lower bound worse than a feasible plan (not binding)",
}


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


def _canonical(problem: PlanningProblem, screening: Screening, objective: int,
               settings: SolverSettings) -> CpSatResult:
    """Among plans with the optimal objective, the one with the lowest candidate index, found by a
    single-worker solve so the answer does not depend on --workers."""
    model = PlacementModel(problem, screening)
    model.model.add(sum(model._objective_terms) <= objective)
    model.model.minimize(sum(t.index * model.use(t) for t in model.tables))
    single = SolverSettings(num_workers=1, random_seed=0, deadline=settings.deadline)
    return model.solve(single, CANONICAL_SOLVE_WORK, "canonical tie-break")


def _fall_back_to_incumbent(result: CpSatResult, screening: Screening) -> CpSatResult:
    """A search limit hit before CP-SAT reported a plan: return the balanced-split incumbent."""
    if screening.incumbent is None:
        raise InfeasibleError(
            "the time limit ran out before any plan was found",
            ["not proven infeasible: raise --time-limit"],
        )
    table, split, value = screening.incumbent
    log.warning("search limit reached; returning the balanced-split incumbent")
    return CpSatResult("feasible", value, result.best_bound, table, split, result.work, screening,
                       result.stopped)


def explain_no_shapes(condition: Condition) -> list[str]:
    """Name what excludes every shape: a policy list, or the rules themselves (with examples)."""
    policy = condition.policy
    free = condition.model_copy(update={"policy": policy.model_copy(update=dict.fromkeys(DEGREE_NAMES))})
    if enumerate_shapes(free):
        pinned = [f"policy.{n}={getattr(policy, n)}" for n in DEGREE_NAMES if getattr(policy, n)]
        return [f"{', '.join(pinned)} excludes every shape the cluster and model admit "
                f"(e.g. {enumerate_shapes(free)[0].label})"]
    n = condition.cluster.num_gpus
    examples = [ParallelShape(tp=1, dp=n), ParallelShape(tp=min(n, condition.cluster.gpus_per_node),
                                                          dp=max(1, n // condition.cluster.gpus_per_node))]
    if condition.model.is_moe:
        examples = [ParallelShape(attn_dp=n, ep=n), ParallelShape(attn_dp=n, etp=n)]
    reasons = []
    for shape in examples:
        reasons += [f"{shape.label}: {p}" for p in shape_violations(shape, free)]
    return reasons or ["no shape satisfies the divisibility and GPU-count rules"]


def _compact_families(families: list[str]) -> list[str]:
    """'memory on pipeline stage 0..7' instead of eight lines."""
    prefix = "memory on pipeline stage "
    stages = sorted(int(f[len(prefix):]) for f in families if f.startswith(prefix))
    others = [f for f in families if not f.startswith(prefix)]
    if not stages:
        return others
    memory = (f"memory on pipeline stage {stages[0]}" if len(stages) == 1 else
              f"memory on pipeline stages {', '.join(map(str, stages))}")
    return [memory, *others]


def _infeasible(problem: PlanningProblem, screening: Screening | None,
                settings: SolverSettings) -> InfeasibleError:
    n = problem.num_candidates
    if not problem.shapes:
        return InfeasibleError(
            "no parallel shape satisfies the divisibility, GPU-count and policy rules",
            explain_no_shapes(problem.condition),
        )
    removed = screening.removed if screening else {}
    families = binding_families(problem, settings.deadline) if settings.name_binding_core else None
    binding = []
    if families:
        binding.append("CP-SAT infeasibility core (assumption literals, minimized): "
                       + "; ".join(_compact_families(families))
                       + " — these constraint families together exclude every plan")
    binding += [f"{reason}: {count} of {n} candidates ({REMOVAL_REASONS[reason]})"
                for reason, count in sorted(removed.items(), key=lambda kv: -kv[1])
                if reason != "dominated"]
    if not binding:
        binding = ["no split of layers over stages meets memory and the SLOs together"]
    return InfeasibleError(f"no plan meets every hard constraint ({n} candidates tried)", binding)


@dataclass(frozen=True)
class _Outcome:
    """What an optimizer chose, before it becomes a Plan."""

    table: CandidateTable
    boundaries: list[int]
    status: str
    objective: int
    bound: int | None
    in_model: int
    screening: Screening | None
    limits: list[str]


def _by_oracle(problem: PlanningProblem, settings: SolverSettings) -> _Outcome:
    oracle = solve_exhaustive(problem, settings.deadline)
    if oracle.table is None or oracle.objective is None:
        if not oracle.complete:
            raise InfeasibleError("the time limit ran out before any plan was found",
                                  ["not proven infeasible: raise --time-limit"])
        raise _infeasible(problem, presolve_candidates(problem), settings)
    status, bound = ("optimal", oracle.objective) if oracle.complete else ("feasible", None)
    return _Outcome(oracle.table, oracle.boundaries, status, oracle.objective, bound,
                    problem.num_candidates, None, [])


def _by_cpsat(problem: PlanningProblem, settings: SolverSettings) -> _Outcome:
    screening = presolve_candidates(problem, settings.screen_candidates)
    if not screening.kept:
        raise _infeasible(problem, screening, settings)
    result = PlacementModel(problem, screening).solve(settings)
    if result.status == "unknown":
        result = _fall_back_to_incumbent(result, screening)
    if result.table is None or result.objective is None:
        raise _infeasible(problem, screening, settings)
    limits = ["work limit: plan search"] if result.stopped == "work" else []
    objective, bound = result.objective, result.best_bound
    if result.status != "optimal":  # the screening's bounds hold for every plan it kept
        floor = min(_bounds(problem, t).objective_lb for t in screening.kept)
        bound = floor if bound is None else max(bound, floor)
        if bound >= objective:  # proven by the bounds after all
            result = dataclasses.replace(result, status="optimal")
    if result.status == "optimal":
        canonical = _canonical(problem, screening, result.objective, settings)
        if canonical.stopped == "work":
            limits.append("work limit: canonical tie-break")
        if canonical.table is not None:  # objective <= the optimum: optimal, even if the index
            result = dataclasses.replace(canonical, status="optimal")  # search stopped early
    assert result.table is not None
    return _Outcome(result.table, result.boundaries, result.status, objective, bound,
                    len(screening.kept), screening, limits)


@keeps_python_sigint
def solve(condition: Condition, method: str = "cp-sat", settings: SolverSettings | None = None,
          *, with_runner_ups: bool = False) -> Solution:
    """Plan one condition. `settings.deadline` (started from `time_limit_s` when absent) is the
    run's wall-clock safety net; deterministic work limits decide the answer. `with_runner_ups`:
    also the best plan of every other shape family (the reports' runner-up table), searched within
    the same deadline; off for the internal re-solves (relaxations, regret)."""
    started = time.perf_counter()
    settings = (settings or SolverSettings()).with_deadline()
    problem = build_problem(condition, settings.deadline, settings.placement_work)
    outcome = _by_oracle(problem, settings) if method == "exhaustive" else _by_cpsat(problem, settings)
    limits = list(outcome.limits)
    if problem.placement_work.skipped_for_budget and not problem.placement_work.deadline_hit:
        limits.append("work limit: expert placement")
    assert settings.deadline is not None
    limits += [f"time limit: {stage}" for stage in settings.deadline.hits]
    table = outcome.table
    info = _solver_info(method, outcome.objective, outcome.bound, problem, outcome.in_model,
                        outcome.screening, limits)
    plan = build_plan(condition, table.costs.shape, table.costs.batch_size, outcome.boundaries,
                      outcome.status, info, problem.placements.get(table.costs.shape.ep))
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
                 in_model: int, screening: Screening | None, limits: list[str]) -> SolverInfo:
    gap = None
    if bound is not None and objective:
        gap = max(0.0, (objective - bound) / objective)
    return SolverInfo(
        method=method,
        objective=objective / OBJECTIVE_SCALE,
        best_bound=None if bound is None else bound / OBJECTIVE_SCALE,
        gap=gap,
        candidates=problem.num_candidates,
        candidates_in_model=in_model,
        candidates_removed=dict(sorted(screening.removed.items())) if screening else {},
        limits_hit=limits,
    )
