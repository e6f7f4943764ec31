"""CP-SAT equals the exhaustive oracle on generated small mixed clusters, and the bounds that
screen loads and templates are proven bounds."""

from __future__ import annotations

from functools import cache

import pytest

from solver.inputs.condition import build_condition
from solver.optimize.mixed_bounds import EXCLUDED
from solver.optimize.mixed_exhaustive import best_split, oracle_total, oracle_values
from solver.optimize.mixed_search import MixedProblem, best_counts, build_mixed_problem, settle_optimal
from solver.optimize.mixed_tables import replica_table, replica_value
from tests.corpus import generate_mixed

CORPUS = generate_mixed(24)


@cache
def problem_of(index: int) -> MixedProblem:
    data = CORPUS[index]
    return build_mixed_problem(build_condition(data, "<corpus>", data["name"]).mixed)


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[d["name"] for d in CORPUS])
def test_cpsat_equals_the_oracle(index: int) -> None:
    problem = problem_of(index)
    result = best_counts(problem, "optimal", settle_optimal)
    values = oracle_values(problem)
    assert result.value == oracle_total(problem, values)
    for t, settled in problem.settled["optimal"].items():
        assert settled.value == values[t], problem.templates[t]
    # the plan achieves its value: counts within each pool, each group's template at its value
    used = [0] * len(problem.cluster.pools)
    for group in result.groups:
        for p, u in enumerate(problem.templates[group.template].usage(len(used))):
            used[p] += group.count * u
    assert all(u <= c for u, c in zip(used, problem.cluster.capacities, strict=True))
    assert sum(g.count * g.settled.value for g in result.groups) == result.value
    assert result.status == ("optimal" if result.groups else "infeasible")


@pytest.mark.parametrize("index", [0, 3, 7, 12])
def test_bounds_are_bounds(index: int) -> None:
    """Every load of every template: its best split is worth at most its bound; an excluded load
    has no feasible split."""
    problem = problem_of(index)
    for t, template in enumerate(problem.templates):
        for i, bound in enumerate(problem.bounds[t].tolist()):
            found = best_split(problem, replica_table(problem.grids, template, i))
            if bound == EXCLUDED:
                assert found is None, (template, i)
            else:
                value = -1 if found is None else replica_value(
                    replica_table(problem.grids, template, i).spt_coefficient, found[0])
                assert value <= bound, (template, i)


def test_the_mixed_optimum_is_at_least_every_single_pool() -> None:
    for index in range(8):
        problem = problem_of(index)
        best = best_counts(problem, "optimal", settle_optimal).value
        for pool in range(len(problem.cluster.pools)):
            alone = best_counts(problem, "optimal", settle_optimal, lambda t, p=pool: t.pools == (p,))
            assert alone.value <= best
