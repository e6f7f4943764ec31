"""CP-SAT model: choose one candidate and the layer-to-stage split, proven optimal.

Data: the kept candidates' integer tables (tables.py). Variables:
  use[c]            one-hot over candidates (AddExactlyOne)
  boundary[P][s]    stage s of a P-stage pipeline holds layers [boundary[P][s], boundary[P][s+1])
  count[P][s][k]    layers of kind k before boundary s, in closed form from the layer pattern
                    (architecture.LayerPattern: max and division constraints, none of size L)
  slowest[c][x]     the slowest stage of step kind x (0 unless c is chosen)
  round[c][x]       max(S_x, m * slowest[c][x]) where a metric form uses it
Constraints: one family at a time from families.FAMILIES (memory per stage, each SLO on its form).
Objective (integer, tables.py units): sum_c objective form of c, which is OBJECTIVE_SCALE x the
float objective of the chosen candidate.

Stage times are linear in the kind counts, so no products of decision variables appear. Per
candidate, redundant lower bounds (bounds.py: a stage is at least the average stage and at least
its extras) tighten the relaxation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ortools.sat.python import cp_model

from solver.optimize.bounds import Bounds
from solver.optimize.families import SLO_FAMILIES, STAGE_FAMILIES
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import Screening, bounds_of, evaluate_split, presolve_candidates
from solver.optimize.settings import SolverSettings
from solver.optimize.tables import CandidateTable
from solver.physics.serving import MAX, SUM
from solver.runtime.limits import Deadline, new_cp_solver, status_of, stop_reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpSatResult:
    status: str  # optimal | feasible | infeasible | unknown
    objective: int | None
    best_bound: int | None
    table: CandidateTable | None
    boundaries: list[int]
    work: float  # CP-SAT deterministic time used
    screening: Screening
    stopped: str | None = None  # None (proven) | work (deterministic limit) | time (the deadline)


class PlacementModel:
    """Builds the CP-SAT model for the kept candidates; `solve()` returns a CpSatResult."""

    def __init__(self, problem: PlanningProblem, screening: Screening,
                 with_assumptions: bool = False, deadline: Deadline | None = None) -> None:
        """Builds the model; with a deadline, a build that outlasts it raises DeadlineExceeded
        (only the infeasibility core builds models large enough for that to matter)."""
        self.problem = problem
        self.screening = screening
        self.model = cp_model.CpModel()
        # constraint families behind assumption literals, to name what binds when infeasible
        self.family_literals: dict[str, cp_model.IntVar] = {}
        self._with_assumptions = with_assumptions
        self.tables = screening.kept
        self.bounds: dict[int, Bounds] = {t.index: bounds_of(problem, t) for t in self.tables}
        self._use: dict[int, cp_model.IntVar] = {}
        self._boundary: dict[int, list[cp_model.IntVar]] = {}
        self._count: dict[int, list[list[cp_model.LinearExprT]]] = {}
        self._aux: list[cp_model.IntVar] = []  # helper variables of the layer-pattern counts
        self._slowest: dict[int, dict[str, cp_model.IntVar]] = {}
        self._round: dict[int, dict[str, cp_model.IntVar]] = {}
        self.objective_terms: list[cp_model.LinearExprT] = []
        self._add_candidate_choice()
        for pp in sorted({t.pp for t in self.tables}):
            self._add_stage_boundaries(pp)
        for count, t in enumerate(self.tables):
            if deadline is not None and count % 256 == 0:
                deadline.enforce("infeasibility core")
            self._add_candidate(t)
        self.objective = self._objective()
        self.model.minimize(self.objective)
        if with_assumptions:
            self.model.add_assumptions(list(self.family_literals.values()))

    # -- queries (families.Encoder)
    def use(self, t: CandidateTable) -> cp_model.IntVar:
        return self._use[t.index]

    def boundaries(self, pp: int) -> list[cp_model.IntVar]:
        return self._boundary[pp]

    def stage_counts(self, pp: int, stage: int) -> list[cp_model.LinearExprT]:
        """Layers of each kind on `stage` of a `pp`-stage pipeline (linear expressions)."""
        before, after = self._count[pp][stage], self._count[pp][stage + 1]
        return [a - b for a, b in zip(after, before, strict=True)]

    def literals(self, name: str) -> list[cp_model.IntVar]:
        """Enforcement literals of a constraint family (none unless built with assumptions)."""
        if not self._with_assumptions:
            return []
        if name not in self.family_literals:
            self.family_literals[name] = self.model.new_bool_var(name)
        return [self.family_literals[name]]

    def form(self, t: CandidateTable, name: str) -> cp_model.LinearExprT:
        """A metric form of candidate `t` as a linear expression (0 unless `t` is chosen)."""
        use, sums = self.use(t), self.bounds[t.index].sums
        terms: list[cp_model.LinearExprT] = []
        for step, which, coefficient in t.forms[name].terms:
            if which == SUM:
                terms.append(coefficient * sums[step] * use)
            elif which == MAX:
                terms.append(coefficient * self._slowest[t.index][step])
            else:
                terms.append(coefficient * self._round[t.index][step])
        return sum(terms)

    # -- the candidate and the split
    def _add_candidate_choice(self) -> None:
        for t in self.tables:
            self._use[t.index] = self.model.new_bool_var(f"use_{t.index}")
        self.model.add_exactly_one(self._use.values())

    def _add_stage_boundaries(self, pp: int) -> None:
        """Contiguous, non-empty stages: 0 = b_0 < b_1 < ... < b_pp = L."""
        n = self.problem.num_layers
        b = [self.model.new_constant(0)]
        for s in range(1, pp):
            b.append(self.model.new_int_var(s, n - (pp - s), f"boundary_pp{pp}_{s}"))
        b.append(self.model.new_constant(n))
        for s in range(pp):
            self.model.add(b[s + 1] >= b[s] + 1)
        self._boundary[pp] = b
        totals = self.problem.counts(0, n)
        counts: list[list[cp_model.LinearExprT]] = [[0] * len(self.problem.kinds)]
        counts += [self._kinds_before(b[s], (s, n - (pp - s)), f"pp{pp}_{s}") for s in range(1, pp)]
        counts.append(list(totals))
        self._count[pp] = counts

    def _kinds_before(self, boundary: cp_model.IntVar, domain: tuple[int, int],
                      name: str) -> list[cp_model.LinearExprT]:
        """Layers of each kind before `boundary`, by the closed-form layer pattern: one max or
        division constraint per rule, whatever the number of layers."""
        n = self.problem.num_layers

        def clip(expr: cp_model.LinearExprT) -> cp_model.IntVar:
            var = self.model.new_int_var(0, n, f"clip_{name}_{len(self._aux)}")
            self.model.add_max_equality(var, [expr, 0])
            self._aux.append(var)
            return var

        def ceil_div(expr: cp_model.LinearExprT, d: int) -> cp_model.IntVar:
            var = self.model.new_int_var(0, n, f"ceil_{name}_{len(self._aux)}")
            self.model.add_division_equality(var, expr + d - 1, d)
            self._aux.append(var)
            return var

        by_key = self.problem.pattern.counts_before(boundary, clip, ceil_div, domain)
        out: list[cp_model.LinearExprT] = []
        for kind in self.problem.kinds:
            var = self.model.new_int_var(0, n, f"count_{name}_{kind.label}")
            self.model.add(var == by_key[self.problem.pattern.key(kind)])
            out.append(var)
        return out

    def _add_candidate(self, t: CandidateTable) -> None:
        """The bottleneck variables of candidate `t`, then every constraint family on it."""
        bnd, use = self.bounds[t.index], self.use(t)
        slowest = {step: self.model.new_int_var(0, bnd.sums[step], f"max_{step}_{t.index}")
                   for step in t.steps}
        rounds = {step: self.model.new_int_var(0, t.microbatches * bnd.sums[step],
                                               f"round_{step}_{t.index}") for step in t.rounds}
        self._slowest[t.index], self._round[t.index] = slowest, rounds
        for s in range(t.pp):
            counts = self.stage_counts(t.pp, s)
            for step, stages in t.steps.items():
                time = sum(c * n for c, n in zip(stages.per_kind, counts, strict=True))
                self.model.add(slowest[step] >= time + stages.extra[s]).only_enforce_if(use)
            for family in STAGE_FAMILIES:
                family.add_stage(self, t, s, counts)
        # round = max(sum of stages, micro-batches x slowest stage)
        for step, var in rounds.items():
            self.model.add(var >= bnd.sums[step] * use)
            self.model.add(var >= t.microbatches * slowest[step])
        # redundant bounds: the bottleneck is at least the average stage
        for step, var in slowest.items():
            self.model.add(var >= bnd.max_lb[step] * use)
        for family in SLO_FAMILIES:
            family.add(self, t)
        self.objective_terms.append(self.form(t, "objective"))

    def _objective(self) -> cp_model.LinearExprT:
        """The chosen candidate's objective: the sum of every candidate's form (0 unless chosen);
        when those sums could leave 64-bit arithmetic (thousands of candidates near the range
        limit, tables.REACH_LIMIT), one variable at least the chosen candidate's form instead."""
        reaches = [self.bounds[t.index].form_reach(t.forms["objective"]) for t in self.tables]
        if sum(reaches) < 2**62:
            return sum(self.objective_terms)
        chosen = self.model.new_int_var(0, max(reaches), "objective")
        for t, term in zip(self.tables, self.objective_terms, strict=True):
            self.model.add(chosen >= term).only_enforce_if(self.use(t))
        return chosen

    def _add_hint(self) -> None:
        if self.screening.incumbent is None:
            return
        table, split, _ = self.screening.incumbent
        for t in self.tables:
            self.model.add_hint(self.use(t), t.index == table.index)
        for s in range(1, table.pp):
            self.model.add_hint(self._boundary[table.pp][s], split[s])

    # -- solve
    def solve(self, settings: SolverSettings, work_limit: float | None = None,
              stage: str = "plan search") -> CpSatResult:
        """Solve within `work_limit` (deterministic time; default settings.plan_work) and the
        run's deadline."""
        work_limit = settings.plan_work if work_limit is None else work_limit
        if settings.deadline is not None and settings.deadline.check(stage):
            return CpSatResult("unknown", None, None, None, [], 0.0, self.screening, "time")
        self._add_hint()
        solver = new_cp_solver(work_limit, settings.deadline, workers=settings.num_workers,
                               seed=settings.random_seed, log=settings.log_search_progress)
        status = status_of(solver, solver.solve(self.model), self.model)
        stopped = stop_reason(solver, status, settings.deadline, stage)
        work = solver.deterministic_time
        if status not in ("optimal", "feasible"):
            bound = None
            if status == "unknown":
                bound = int(math.floor(solver.best_objective_bound + 1e-6))
            return CpSatResult(status, None, bound, None, [], work, self.screening, stopped)
        chosen = next(t for t in self.tables if solver.boolean_value(self.use(t)))
        bounds = [int(solver.value(v)) for v in self._boundary[chosen.pp]]
        # the chosen split's objective in exact integers: CP-SAT reports its objective as a double,
        # which was seen 2 units off its own variables' values near 2^44 (solution is the same)
        objective = evaluate_split(self.problem, chosen, bounds)
        if objective is None:
            raise RuntimeError(f"CP-SAT's plan breaks a constraint family (candidate {chosen.index})")
        best_bound = int(math.floor(solver.best_objective_bound + 1e-6))
        best_bound = objective if status == "optimal" else min(best_bound, objective)
        return CpSatResult(status, objective, best_bound, chosen, bounds, work, self.screening, stopped)


def solve_cpsat(problem: PlanningProblem, settings: SolverSettings) -> CpSatResult:
    screening = presolve_candidates(problem, settings.screen_candidates)
    log.info("candidates kept %d, removed %s", len(screening.kept), screening.removed)
    if not screening.kept:
        return CpSatResult("infeasible", None, None, None, [], 0.0, screening)
    return PlacementModel(problem, screening).solve(settings.with_deadline())
