"""CP-SAT must reach exactly the exhaustive optimum (same integer objective) on a generated corpus."""

from __future__ import annotations

from functools import cache

import pytest

from solver.condition import build_condition
from solver.errors import InfeasibleError
from solver.exhaustive import solve_exhaustive
from solver.formulation import SolverSettings, evaluate_split, solve_cpsat
from solver.planner import solve
from solver.problem import build_problem
from tests.corpus import generate

CORPUS = generate()


def _problem(data):
    return build_problem(build_condition(data, data["name"], data["name"]))


@cache
def _oracle(index: int):
    problem = _problem(CORPUS[index])
    return problem, solve_exhaustive(problem)


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[d["name"] for d in CORPUS])
def test_cpsat_matches_exhaustive(index):
    problem, oracle = _oracle(index)
    for screen in (True, False):
        result = solve_cpsat(problem, SolverSettings(time_limit_s=60, screen_candidates=screen))
        if oracle.objective is None:
            assert result.status == "infeasible", f"screen={screen}: oracle says infeasible"
            continue
        assert result.status == "optimal", f"screen={screen}"
        assert result.objective == oracle.objective, f"screen={screen}"
        assert result.best_bound == oracle.objective
        # the decoded split really achieves the objective it claims
        assert evaluate_split(problem, result.table, result.boundaries) == result.objective


def test_corpus_is_interesting():
    """The corpus exercises pipelines, MoE, infeasible cases and several layer kinds."""
    outcomes = {"feasible": 0, "infeasible": 0, "pp>1": 0, "moe": 0, "multi-kind": 0}
    for index in range(len(CORPUS)):
        problem, oracle = _oracle(index)
        if oracle.table is None:
            outcomes["infeasible"] += 1
            continue
        outcomes["feasible"] += 1
        outcomes["pp>1"] += oracle.table.pp > 1
        outcomes["moe"] += problem.condition.model.is_moe
        outcomes["multi-kind"] += len(problem.kinds) > 1
    assert len(CORPUS) >= 30
    assert outcomes["feasible"] >= 20 and outcomes["infeasible"] >= 2
    assert outcomes["pp>1"] >= 3 and outcomes["moe"] >= 5 and outcomes["multi-kind"] >= 3


@pytest.mark.parametrize("data", CORPUS[:12], ids=[d["name"] for d in CORPUS[:12]])
def test_plan_objective_matches_float_evaluator(data):
    """The float objective of the decoded plan is within rounding of the integer optimum."""
    condition = build_condition(data, data["name"], data["name"])
    try:
        solution = solve(condition)
    except InfeasibleError:
        return
    plan = solution.plan
    assert plan.solver.objective == pytest.approx(plan.metrics.objective, rel=1e-5)
