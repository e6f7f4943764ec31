"""The infeasibility core that screening's bounds already prove, without the all-candidates model.

When one latency SLO (slo.ttft_ms, slo.tpot_ms or slo.e2e_latency_ms: each one assumption literal
of core.py's model) breaks every candidate inside the integer model's range even at its balanced
bounds (screening.excludes_every_candidate: that family's own bound, not the first reason screening
recorded), and one such candidate's balanced split meets every other family (memory and KV capacity
on every stage, the other SLOs, the request rate: a plan of the model with every assumption but
that SLO's), then {that SLO} is the one minimal core core.py can name:

- the model with the SLO alone enforced is infeasible: every candidate's form is at least its
  bound there (the model's own redundant constraints), and the bound is above the limit;
- every set of assumptions without it is feasible (the split above is a plan of it, and fewer
  enforced families leave it a plan), so every infeasible set contains it and the only minimal
  one is {it}. core.py's search (memory, memory + KV capacity, the SLOs, then everything; deletion
  over the first infeasible set) therefore ends on exactly {it} whenever its solves prove their
  answers, and this names it without building or solving anything.

Anything else (no such split among the first WITNESS_TRIES candidates, two SLOs each excluding
every plan, memory, the request rate) goes to core.py's CP-SAT search unchanged.
"""

from __future__ import annotations

import numpy as np

from solver.optimize.bounds import reach
from solver.optimize.families import E2E, FAMILIES, TPOT, TTFT, SloFamily
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import (
    Family,
    balanced_boundaries,
    evaluate_split,
    excludes_every_candidate,
    grid_bounds_of,
    in_range,
)
from solver.optimize.tables import REACH_LIMIT

SINGLE_FAMILIES: tuple[SloFamily, ...] = (TTFT, TPOT, E2E)  # one assumption literal each
WITNESS_TRIES = 16  # balanced splits tried for the plan without the excluding family


def _most_headroom(problem: PlanningProblem, families: list[Family]) -> list[int]:
    """Up to WITNESS_TRIES candidates whose grid bounds leave `families` the most room (the largest
    bound-to-limit ratio smallest; ties by index), none that a bound surely breaks."""
    g, b = problem.table_grid(), grid_bounds_of(problem)
    worst = np.zeros(problem.num_candidates)
    for family in families:
        limit = family.limit(g)
        if limit is not None:
            value = np.asarray(family.lower_bound(g, b), dtype=float)
            worst = np.maximum(worst, value / np.maximum(np.asarray(limit, dtype=float), 1.0))
    worst[np.asarray(reach(g, b), dtype=float) >= REACH_LIMIT * (1 - 1e-6)] = np.inf
    order = np.lexsort((np.arange(problem.num_candidates), worst))[:WITNESS_TRIES]
    return [int(i) for i in order if worst[i] <= 1 + 1e-6]


def has_plan_without(problem: PlanningProblem, excluded: Family) -> bool:
    """Whether a candidate inside the range has a balanced split meeting every family but
    `excluded` (exact integers, as screening's incumbent)."""
    others = [f for f in FAMILIES if f is not excluded]
    for index in _most_headroom(problem, others):
        t = problem.table(index)
        split = balanced_boundaries(problem.num_layers, t.pp)
        if in_range(problem, t) and evaluate_split(problem, t, split, others) is not None:
            return True
    return False


def core_from_bounds(problem: PlanningProblem) -> list[str] | None:
    """[the SLO's key] when the bounds prove it the minimal core (module docstring); else None."""
    if not problem.num_candidates:
        return None
    excluding = [f for f in SINGLE_FAMILIES if excludes_every_candidate(problem, f)]
    if len(excluding) != 1 or not has_plan_without(problem, excluding[0]):
        return None
    return [excluding[0].key]
