"""Run the chosen method on a planning problem: the optimizer's choice, before it becomes a Plan.

CP-SAT (screening, the model, the canonical tie-break) or the exhaustive oracle; when no plan
exists, an InfeasibleError naming the constraint families that bind (core.py) and what screening
removed for each (families.FAMILIES' wording).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from solver.errors import InfeasibleError
from solver.inputs.condition import DEGREE_NAMES, Condition
from solver.optimize.bounds import OUT_OF_RANGE
from solver.optimize.core import binding_families
from solver.optimize.exhaustive import solve_exhaustive
from solver.optimize.families import FAMILIES, STAGE_FAMILIES
from solver.optimize.formulation import CpSatResult, PlacementModel
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import DOMINATED, Screening, objective_bound, presolve_candidates
from solver.optimize.settings import SolverSettings
from solver.optimize.tables import CandidateTable
from solver.physics.shapes import ParallelShape, enumerate_shapes, shape_violations
from solver.runtime.limits import CANONICAL_SOLVE_WORK

log = logging.getLogger(__name__)

REMOVAL_REASONS = {f.reason: f.removal for f in FAMILIES} | {
    DOMINATED: "lower bound worse than a feasible plan (not binding)",
    OUT_OF_RANGE: "objective or a bounded metric beyond the integer model's range, at least "
                  "10^4 times the roofline ideal"}


def _canonical(problem: PlanningProblem, screening: Screening, objective: int,
               settings: SolverSettings) -> CpSatResult:
    """Among plans with the optimal objective, the one with the lowest candidate index, found by a
    single-worker solve so the answer does not depend on --workers."""
    model = PlacementModel(problem, screening)
    model.model.add(model.objective <= objective)
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
    """'memory on pipeline stages 0, 1, ... 7' instead of eight lines (each stage family)."""
    out, others = [], list(families)
    for family in STAGE_FAMILIES:
        prefix = family.core_prefix
        stages = sorted(int(f[len(prefix):]) for f in families if f.startswith(prefix))
        others = [f for f in others if not f.startswith(prefix)]
        if stages:
            out.append(f"{prefix}{stages[0]}" if len(stages) == 1 else
                       f"{prefix.replace('stage ', 'stages ')}{', '.join(map(str, stages))}")
    return out + others


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
                if reason != DOMINATED]
    if not binding:
        binding = ["no split of layers over stages meets memory and the SLOs together"]
    return InfeasibleError(f"no plan meets every hard constraint ({n} candidates tried)", binding)


@dataclass(frozen=True)
class Outcome:
    """What an optimizer chose, before it becomes a Plan."""

    table: CandidateTable
    boundaries: list[int]
    status: str
    objective: int
    bound: int | None
    in_model: int
    screening: Screening | None
    limits: list[str]


def by_oracle(problem: PlanningProblem, settings: SolverSettings) -> Outcome:
    oracle = solve_exhaustive(problem, settings.deadline)
    if oracle.table is None or oracle.objective is None:
        if not oracle.complete:
            raise InfeasibleError("the time limit ran out before any plan was found",
                                  ["not proven infeasible: raise --time-limit"])
        raise _infeasible(problem, presolve_candidates(problem), settings)
    status, bound = ("optimal", oracle.objective) if oracle.complete else ("feasible", None)
    return Outcome(oracle.table, oracle.boundaries, status, oracle.objective, bound,
                    problem.num_candidates, None, [])


def by_cpsat(problem: PlanningProblem, settings: SolverSettings) -> Outcome:
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
        floor = min(objective_bound(problem, t) for t in screening.kept)
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
    return Outcome(result.table, result.boundaries, result.status, objective, bound,
                    len(screening.kept), screening, limits)


