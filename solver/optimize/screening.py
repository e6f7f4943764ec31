"""Screening: candidates that provably cannot be feasible or optimal leave before the model is built.

A candidate is removed for a constraint family (in the order of families.FAMILIES) when even its
balanced-split bounds break it, and as dominated when its objective bound exceeds the objective of
a feasible plan (the best balanced split found, which also hints the CP-SAT search). Exact: no
removed candidate could have been chosen. The counts per reason go to plan.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solver.optimize.bounds import OUT_OF_RANGE, Bounds, grid_bounds, reach, table_bounds
from solver.optimize.families import FAMILIES, SloFamily, StageMemoryFamily
from solver.optimize.problem import PlanningProblem
from solver.optimize.tables import REACH_LIMIT, CandidateTable, IntForm, TableGrid
from solver.physics.serving import ROUND

DOMINATED = "dominated"
Family = StageMemoryFamily | SloFamily


@dataclass
class Screening:
    """Why candidates left the model before CP-SAT saw it (counts per reason)."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: list[CandidateTable] = field(default_factory=list)
    incumbent: tuple[CandidateTable, list[int], int] | None = None  # table, boundaries, objective

    def remove(self, reason: str) -> None:
        self.removed[reason] = self.removed.get(reason, 0) + 1


def bounds_of(problem: PlanningProblem, t: CandidateTable) -> Bounds:
    """Bounds of a candidate, computed once per problem (screening, model and runner-ups share)."""
    cached = problem.bounds_cache.get(t.index)
    if cached is None:
        cached = problem.bounds_cache[t.index] = table_bounds(t, problem.counts(0, problem.num_layers))
    return cached


def in_range(problem: PlanningProblem, t: CandidateTable) -> bool:
    """Whether the candidate's numbers are inside the integer model's range (tables.REACH_LIMIT)."""
    return bool(reach(t, bounds_of(problem, t)) < REACH_LIMIT)


def objective_bound(problem: PlanningProblem, t: CandidateTable) -> int:
    """The objective no split of candidate `t` can beat (its form at the balanced bounds)."""
    return bounds_of(problem, t).form_lb(t.forms["objective"])


def bound_violation(t: CandidateTable, b: Bounds) -> str | None:
    """The constraint family a candidate breaks even with a perfectly balanced split, if any
    (or that its numbers are outside the integer model's range)."""
    if reach(t, b) >= REACH_LIMIT:
        return OUT_OF_RANGE
    for family in FAMILIES:
        limit = family.limit(t)
        if limit is not None and family.lower_bound(t, b) > limit:
            return family.reason
    return None


@dataclass(frozen=True)
class Classification:
    """Every candidate's screening verdict, exact: the constraint family its balanced bounds break
    (None: none), and its objective lower bound with the slack within which the vectorized value
    may differ from the exact one."""

    reasons: list[str | None]
    objective_lb: np.ndarray
    slack: np.ndarray


def _slack(form: IntForm | None, stage: Any, microbatches: Any) -> Any:
    """How far a grid value may be from the exact integer: one unit of disagreement per rounding
    (ulp-level differences of numpy's pow/log) reaches `stage` units in a stage sum or maximum,
    m of them in a round; a form multiplies them by its coefficients."""
    if form is None:  # memory: one stage
        return stage
    weight = sum(c * (microbatches if which == ROUND else 1) for _, which, c in form.terms)
    return stage * (1 + weight)


def grid_bounds_of(problem: PlanningProblem) -> Bounds:
    """The balanced-split bounds of every candidate at once (arrays), computed once per problem."""
    cached = problem.screen_cache.get("grid_bounds")
    if not isinstance(cached, Bounds):
        totals = problem.counts(0, problem.num_layers)
        cached = problem.screen_cache["grid_bounds"] = grid_bounds(problem.table_grid(), totals)
    return cached


def excludes_every_candidate(problem: PlanningProblem, family: Family) -> bool:
    """Whether `family`'s own balanced-split bound breaks every candidate inside the integer
    model's range, whatever reason `classify` recorded first: the grid's sure verdicts (as in
    `classify`), the exact table's for the rest. False as soon as one candidate may meet it."""
    g = problem.table_grid()
    limit = family.limit(g)
    if limit is None:
        return False
    b = grid_bounds_of(problem)
    reached = np.asarray(reach(g, b), dtype=float)
    value = family.lower_bound(g, b)
    form = g.forms.get(getattr(family, "form", ""))
    slack = (_slack(form, problem.num_layers + g.pp + 2, g.microbatches)
             + 1e-9 * np.abs(value) + 1e-9 * np.abs(limit))
    if np.any((reached < REACH_LIMIT * (1 - 1e-6)) & (value + slack <= limit)):
        return False  # a candidate inside the range surely meets it
    unsure = ~(reached >= REACH_LIMIT * (1 + 1e-6)) & ~np.asarray(value - slack > limit)
    for i in np.flatnonzero(unsure).tolist():
        t = problem.table(i)
        exact = family.limit(t)
        if in_range(problem, t) and (exact is None or family.lower_bound(t, bounds_of(problem, t)) <= exact):
            return False
    return True


def classify(problem: PlanningProblem) -> Classification:
    """Screen every candidate on the vectorized TableGrid; the few whose bound lies within the
    rounding slack of a limit get their full table and the exact check (cached per problem)."""
    cached = problem.screen_cache.get("classification")
    if isinstance(cached, Classification):
        return cached
    g: TableGrid = problem.table_grid()
    b = grid_bounds_of(problem)
    stage = problem.num_layers + g.pp + 2
    n = problem.num_candidates
    verdict = np.zeros(n, dtype=np.int64)  # 0 passes, k > 0 FAMILIES[k-1], -1 not settled
    reached = np.asarray(reach(g, b), dtype=float)  # near the limit: settled on the exact table
    verdict[reached >= REACH_LIMIT * (1 + 1e-6)] = -2
    verdict[(reached >= REACH_LIMIT * (1 - 1e-6)) & (verdict == 0)] = -1
    open_ = verdict == 0
    for code, family in enumerate(FAMILIES, start=1):
        limit = family.limit(g)
        if limit is None:
            continue
        value = family.lower_bound(g, b)
        form = g.forms.get(getattr(family, "form", ""))
        slack = _slack(form, stage, g.microbatches) + 1e-9 * np.abs(value) + 1e-9 * np.abs(limit)
        broken, unsure = value - slack > limit, value + slack > limit
        verdict[open_ & broken] = code
        verdict[open_ & unsure & ~broken] = -1
        open_ &= ~unsure
    reasons: list[str | None] = [None if v == 0 else FAMILIES[v - 1].reason if v > 0
                                 else OUT_OF_RANGE if v == -2 else "?" for v in verdict.tolist()]
    for i in np.flatnonzero(verdict == -1).tolist():
        t = problem.table(i)
        reasons[i] = bound_violation(t, bounds_of(problem, t))
    objective = g.forms["objective"]
    objective_lb = np.asarray(b.form_lb(objective), dtype=float)
    slack = _slack(objective, stage, g.microbatches) + 1e-9 * np.abs(objective_lb)
    result = Classification(reasons, objective_lb, np.asarray(slack, dtype=float))
    problem.screen_cache["classification"] = result
    return result


def balanced_boundaries(num_layers: int, pp: int) -> list[int]:
    """Even split by layer count, remainder to the middle stages (they carry no extras)."""
    base, extra = divmod(num_layers, pp)
    sizes = [base] * pp
    order = list(range(1, pp - 1)) + [0, pp - 1] if pp > 2 else list(range(pp))
    for s in order[:extra]:
        sizes[s] += 1
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    return bounds


def evaluate_split(problem: PlanningProblem, t: CandidateTable, boundaries: list[int],
                   families: Sequence[Family] = FAMILIES) -> int | None:
    """Integer objective of a split, or None if it breaks a constraint family (of `families`:
    all of them unless told)."""
    times: dict[str, list[int]] = {step: [] for step in t.steps}
    held: dict[str, list[int]] = {"memory": [], "weights": []}
    for s in range(t.pp):
        counts = problem.counts(boundaries[s], boundaries[s + 1])
        if boundaries[s + 1] <= boundaries[s]:
            return None
        held["memory"].append(t.memory.stage(counts, s))
        held["weights"].append(t.weights.stage(counts, s))
        for step, stages in t.steps.items():
            times[step].append(stages.stage(counts, s))
    sums = {step: sum(v) for step, v in times.items()}
    maxima = {step: max(v) for step, v in times.items()}
    if not all(f.split_ok(t, held, sums, maxima) for f in families):
        return None
    return int(t.forms["objective"].value(sums, maxima, t.microbatches))


def _incumbent_of(problem: PlanningProblem, screening: Screening, t: CandidateTable,
                  best: tuple[int, int] | None) -> tuple[int, int] | None:
    """The balanced split of `t` as the new incumbent when it is feasible and better."""
    split = balanced_boundaries(problem.num_layers, t.pp)
    value = evaluate_split(problem, t, split)
    if value is not None and (best is None or (value, t.index) < best):
        screening.incumbent = (t, split, value)
        return value, t.index
    return best


def presolve_candidates(problem: PlanningProblem, screen: bool = True) -> Screening:
    """Drop candidates that provably cannot be feasible or optimal; keep an incumbent for hints.

    Screening runs on the vectorized bounds of every candidate (`classify`); full tables are built
    only for the candidates whose bound comes within the incumbent's value (taken in increasing
    order of the bound, so the scan stops at the first one above it). With screen=False every
    candidate enters the model (used by tests of the formulation itself).
    """
    screening = Screening()
    if not screen:
        screening.kept = [t for t in problem.tables if in_range(problem, t)]
        for _ in range(problem.num_candidates - len(screening.kept)):
            screening.remove(OUT_OF_RANGE)
        best: tuple[int, int] | None = None
        for t in screening.kept:
            best = _incumbent_of(problem, screening, t, best)
        return screening
    verdict = classify(problem)
    survivors = []
    for i, reason in enumerate(verdict.reasons):
        if reason is None:
            survivors.append(i)
        else:
            screening.remove(reason)
    survivors.sort(key=lambda i: (verdict.objective_lb[i], i))
    best = None  # (balanced-split objective, index) of the incumbent
    scanned: list[CandidateTable] = []
    for i in survivors:
        if best is not None and verdict.objective_lb[i] - verdict.slack[i] > best[0]:
            break  # this bound and every later one exceed a feasible plan
        t = problem.table(i)
        scanned.append(t)
        best = _incumbent_of(problem, screening, t, best)
    screening.kept = sorted((t for t in scanned if best is None or objective_bound(problem, t) <= best[0]),
                            key=lambda t: t.index)
    for _ in range(len(survivors) - len(screening.kept)):
        screening.remove(DOMINATED)
    return screening
