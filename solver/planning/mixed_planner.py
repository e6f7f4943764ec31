"""solve_mixed(): a mixed-cluster condition -> templates and bounds -> optimum (CP-SAT) -> plan ->
verification, with the comparisons the reports state: the best plan on each pool alone (the same
decision space restricted to that pool's templates) and the proportional-split heuristic."""

from __future__ import annotations

import time
from dataclasses import dataclass

from solver.document.mixed_build import build_mixed_plan
from solver.document.mixed_plan import Comparison, GroupChoice, MixedPlan, SinglePoolResult
from solver.document.mixed_verify import Row, failed, verify_mixed
from solver.document.plan import SolverInfo
from solver.errors import InfeasibleError, VerificationError
from solver.inputs.condition import Condition
from solver.optimize.mixed_bounds import EXCLUDED
from solver.optimize.mixed_exhaustive import oracle_settle
from solver.optimize.mixed_heuristic import PROPORTIONAL, settle_proportional
from solver.optimize.mixed_search import (
    MixedProblem,
    MixedResult,
    best_counts,
    build_mixed_problem,
    settle_optimal,
)
from solver.optimize.mixed_tables import VALUE_PER_TOKEN_S
from solver.runtime.limits import Deadline


@dataclass(frozen=True)
class MixedSolution:
    plan: MixedPlan
    checks: list[Row]
    problem: MixedProblem
    choices: list[GroupChoice]
    seconds: float = 0.0
    runner_ups: None = None  # the single-kind runner-up table has no mixed counterpart yet


def choices_of(problem: MixedProblem, result: MixedResult) -> list[GroupChoice]:
    out = []
    for g in result.groups:
        template = problem.templates[g.template]
        assert g.settled.load is not None
        load = problem.grids.loads[template.pp].load(g.settled.load)
        out.append(GroupChoice(template=template, count=g.count, load=load,
                               boundaries=g.settled.boundaries))
    return out


def _replicas(problem: MixedProblem, result: MixedResult) -> list[str]:
    names = [p.name for p in problem.cluster.pools]
    return [f"{g.count} x {problem.templates[g.template].label(names)}" for g in result.groups]


def compare(problem: MixedProblem, best: MixedResult, deadline: Deadline | None) -> Comparison:
    """The optimum against each pool alone and the proportional heuristic (tokens/s)."""
    singles = []
    rule = "optimal" if "optimal" in problem.settled else "exhaustive"
    settle = settle_optimal if rule == "optimal" else oracle_settle
    for pool in problem.cluster.pools:
        alone = best_counts(problem, rule, settle, lambda t, p=pool.index: t.pools == (p,), deadline)
        singles.append(SinglePoolResult(pool=pool.name, tokens_per_s=alone.value / VALUE_PER_TOKEN_S,
                                        replicas=_replicas(problem, alone)))
    heuristic = best_counts(problem, PROPORTIONAL, settle_proportional, deadline=deadline)
    top = max(singles, key=lambda s: s.tokens_per_s) if singles else None
    return Comparison(
        mixed_tokens_per_s=best.value / VALUE_PER_TOKEN_S, single_pool=singles,
        best_single_pool=top.pool if top and top.tokens_per_s > 0 else None,
        best_single_pool_tokens_per_s=top.tokens_per_s if top else 0.0,
        proportional_tokens_per_s=heuristic.value / VALUE_PER_TOKEN_S,
        proportional_replicas=_replicas(problem, heuristic))


def _solver_info(method: str, problem: MixedProblem, result: MixedResult, gpus: int) -> SolverInfo:
    excluded = sum(1 for t in range(len(problem.templates)) if problem.upper(t) == EXCLUDED)
    per_gpu = result.value / VALUE_PER_TOKEN_S / gpus
    return SolverInfo(method=method, objective=per_gpu,
                      best_bound=per_gpu if result.status == "optimal" else None,
                      gap=0.0 if result.status == "optimal" else None,
                      candidates=len(problem.templates), candidates_in_model=result.settled,
                      candidates_removed={"bounds": excluded} if excluded else {}, limits_hit=[])


def solve_mixed(condition: Condition, method: str = "cp-sat", deadline: Deadline | None = None,
                with_comparison: bool = True) -> MixedSolution:
    """Plan a mixed cluster; `method` exhaustive settles every template by enumerating splits."""
    started = time.perf_counter()
    problem = build_mixed_problem(condition.mixed)
    if method == "exhaustive":
        result = best_counts(problem, "exhaustive", oracle_settle, deadline=deadline)
    else:
        result = best_counts(problem, "optimal", settle_optimal, deadline=deadline)
    if not result.groups:
        raise InfeasibleError(f"no replica of any pipeline template over {len(condition.mixed.pools)} "
                              "pools meets memory and the SLOs", ["memory", "slo"])
    choices = choices_of(problem, result)
    comparison = compare(problem, result, deadline) if with_comparison else None
    info = _solver_info(method, problem, result, condition.mixed.num_gpus)
    plan = build_mixed_plan(condition, choices, result.status, info, comparison)
    checks = verify_mixed(condition, plan, choices)
    broken = failed(checks)
    if broken:
        names = ", ".join(f"{r[0]} ({r[1]} vs {r[2]})" for r in broken)
        raise VerificationError(f"internal error: the verifier rejected the mixed plan: {names}")
    return MixedSolution(plan, checks, problem, choices, time.perf_counter() - started)
