"""CP-SAT model: choose one (shape, batch) candidate and the layer-to-stage split, proven optimal.

Variables
  use[c]            one-hot over candidates (AddExactlyOne)
  boundary[P][s]    stage s of a P-stage pipeline holds layers [boundary[P][s], boundary[P][s+1])
  count[P][s][k]    layers of kind k before boundary s, in closed form from the layer pattern
                    (architecture.LayerPattern: max and division constraints, none of size L)
  max_prefill[c], max_decode[c], tpot[c]  per-candidate bottlenecks (0 unless chosen)
Objective (integer, tables.py units): sum_c  SP_c*use[c] + (m_p-1)*max_prefill[c] + out*tpot[c]
which equals TTFT + out*TPOT of the chosen candidate in its own units (OBJECTIVE_SCALE x objective).

Stage times are linear in the kind counts, so no products of decision variables appear. Per-candidate
lower bounds (a stage is at least total/pp and at least its fixed extras) tighten the relaxation.
Candidates whose lower bound already breaks memory or an SLO, or exceeds a feasible greedy plan's
objective, are removed before the model is built (`presolve_candidates`); their counts are reported.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from solver.optimize.problem import PlanningProblem
from solver.optimize.tables import CandidateTable, objective_units
from solver.physics.cost import ceil_div, vmax, vmin
from solver.physics.placement import PLACEMENT_WORK
from solver.runtime.limits import (
    CORE_WORK,
    PLAN_SOLVE_WORK,
    Deadline,
    DeadlineExceeded,
    new_cp_solver,
    status_of,
    stop_reason,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float = 60.0  # wall-clock safety net for the whole run (limits.Deadline)
    num_workers: int = 2
    random_seed: int = 0
    log_search_progress: bool = False
    screen_candidates: bool = True  # drop candidates by proven bounds before building the model
    name_binding_core: bool = True  # when infeasible, minimize a CP-SAT core of constraint families
    deadline: Deadline | None = None  # the run's deadline; solve() starts one from time_limit_s
    plan_work: float = PLAN_SOLVE_WORK  # CP-SAT deterministic time for the plan's model
    placement_work: float = PLACEMENT_WORK  # for all expert packing searches of one problem

    def with_deadline(self) -> SolverSettings:
        """These settings with a running deadline (an existing one is kept: it is the run's)."""
        return self if self.deadline is not None else replace(self, deadline=Deadline(self.time_limit_s))


@dataclass
class Screening:
    """Why candidates left the model before CP-SAT saw it (counts per reason)."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: list[CandidateTable] = field(default_factory=list)
    incumbent: tuple[CandidateTable, list[int], int] | None = None  # table, boundaries, objective

    def remove(self, reason: str) -> None:
        self.removed[reason] = self.removed.get(reason, 0) + 1


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


# ---- bounds and greedy -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bounds:
    prefill_sum: int
    decode_sum: int
    max_prefill_lb: int
    max_decode_lb: int
    memory_lb: int
    objective_lb: int


def _bounds(problem: PlanningProblem, t: CandidateTable) -> _Bounds:
    """Bounds of a candidate, computed once per problem (screening, model and runner-ups share)."""
    cached = problem.bounds_cache.get(t.index)
    if cached is None:
        cached = problem.bounds_cache[t.index] = _compute_bounds(problem, t)
    assert isinstance(cached, _Bounds)
    return cached


def _compute_bounds(problem: PlanningProblem, t: CandidateTable) -> _Bounds:
    return balanced_bounds((t.prefill_per_kind, t.decode_per_kind, t.memory_per_kind),
                           problem.counts(0, problem.num_layers),
                           (sum(t.prefill_extra), sum(t.decode_extra), sum(t.memory_extra)),
                           (max(t.prefill_extra), max(t.decode_extra), max(t.memory_extra)),
                           t.pp, t.prefill_microbatches, t.output_tokens)


def balanced_bounds(per_kind: tuple[Sequence[Any], Sequence[Any], Sequence[Any]], totals: list[int],
                    extra_sums: tuple[Any, Any, Any], extra_maxima: tuple[Any, Any, Any], pp: Any,
                    microbatches: Any, output_tokens: int) -> _Bounds:
    """Bounds every contiguous split obeys: a stage is at least the average stage and at least its
    extras plus one layer. Per kind: (prefill, decode, memory) integers; extras summed over the
    pipeline's stages and their maximum. Integers for one table, or float arrays for the grid."""
    layer = [sum(c * n for c, n in zip(v, totals, strict=True)) for v in per_kind]
    lightest = [functools.reduce(vmin, [c for c, n in zip(v, totals, strict=True) if n]) for v in per_kind]
    sp, sd = layer[0] + extra_sums[0], layer[1] + extra_sums[1]
    mp = vmax(ceil_div(sp, pp), extra_maxima[0] + lightest[0])
    md = vmax(ceil_div(sd, pp), extra_maxima[1] + lightest[1])
    mem = vmax(ceil_div(layer[2] + extra_sums[2], pp), extra_maxima[2] + lightest[2])
    obj = objective_units(sp, mp, sd, md, microbatches, microbatches, output_tokens)
    return _Bounds(sp, sd, mp, md, mem, obj)


def _bound_checks(b: _Bounds, microbatches: Any, limits: tuple[Any, Any, Any, Any],
                  ) -> list[tuple[str, Any, Any]]:
    """(reason, lower bound, limit) in the order reasons are attributed; limit None: no check."""
    ttft_lb = b.prefill_sum + (microbatches - 1) * b.max_prefill_lb
    tpot_lb = vmax(b.decode_sum, microbatches * b.max_decode_lb)
    values = (b.memory_lb, ttft_lb, tpot_lb, b.objective_lb)
    return list(zip(REASONS, values, limits, strict=True))


REASONS = ("memory", "ttft_slo", "tpot_slo", "e2e_slo")


def bound_violation(t: CandidateTable, b: _Bounds) -> str | None:
    """The constraint family a candidate breaks even with a perfectly balanced split, if any."""
    limits = (t.memory_limit, t.ttft_limit, t.tpot_limit, t.e2e_limit)
    for reason, value, limit in _bound_checks(b, t.prefill_microbatches, limits):
        if limit is not None and value > limit:
            return reason
    return None


@dataclass(frozen=True)
class Classification:
    """Every candidate's screening verdict, exact: the constraint family its balanced bounds break
    (None: none), and its objective lower bound with the slack within which the vectorized value
    may differ from the exact one."""

    reasons: list[str | None]
    objective_lb: np.ndarray
    slack: np.ndarray


def classify(problem: PlanningProblem) -> Classification:
    """Screen every candidate on the vectorized TableGrid; the few whose bound lies within the
    rounding slack of a limit get their full table and the exact check (cached per problem)."""
    cached = problem.screen_cache.get("classification")
    if isinstance(cached, Classification):
        return cached
    g = problem.table_grid()
    b = balanced_bounds((g.prefill_per_kind, g.decode_per_kind, g.memory_per_kind),
                        problem.counts(0, problem.num_layers), g.extra_sums(), g.extra_maxima(),
                        g.pp, g.microbatches, g.output_tokens)
    # one integer of disagreement per rounding (ulp-level differences of numpy's pow/log) can
    # reach L + pp units in a stage sum; TTFT/TPOT multiply it by the micro-batches, the objective
    # also by the output tokens
    stage = problem.num_layers + g.pp + 2
    per_check = (stage, stage * (1 + g.microbatches), stage * (1 + g.microbatches),
                 stage * (1 + g.microbatches) * (1 + g.output_tokens))
    n = problem.num_candidates
    verdict = np.zeros(n, dtype=np.int64)  # 0 passes, k > 0 REASONS[k-1], -1 not settled
    open_ = np.ones(n, dtype=bool)
    checks = _bound_checks(b, g.microbatches, (g.memory_limit, g.ttft_limit, g.tpot_limit, g.e2e_limit))
    for code, ((_, value, limit), units) in enumerate(zip(checks, per_check, strict=True), start=1):
        if limit is None:
            continue
        slack = units + 1e-9 * np.abs(value) + 1e-9 * np.abs(limit)
        broken, unsure = value - slack > limit, value + slack > limit
        verdict[open_ & broken] = code
        verdict[open_ & unsure & ~broken] = -1
        open_ &= ~unsure
    reasons: list[str | None] = [None if v == 0 else REASONS[v - 1] if v > 0 else "?"
                                 for v in verdict.tolist()]
    for i in np.flatnonzero(verdict < 0).tolist():
        t = problem.table(i)
        reasons[i] = bound_violation(t, _bounds(problem, t))
    objective_lb = np.asarray(b.objective_lb, dtype=float)
    result = Classification(reasons, objective_lb, per_check[3] + 1e-9 * np.abs(objective_lb))
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


def evaluate_split(problem: PlanningProblem, t: CandidateTable, boundaries: list[int]) -> int | None:
    """Integer objective of a split, or None if it breaks memory or an SLO."""
    prefill, decode = [], []
    for s in range(t.pp):
        counts = problem.counts(boundaries[s], boundaries[s + 1])
        if boundaries[s + 1] <= boundaries[s]:
            return None
        if t.stage_memory(counts, s) > t.memory_limit:
            return None
        prefill.append(t.stage_prefill(counts, s))
        decode.append(t.stage_decode(counts, s))
    ttft = sum(prefill) + (t.prefill_microbatches - 1) * max(prefill)
    tpot = max(sum(decode), t.decode_microbatches * max(decode))
    objective = ttft + t.output_tokens * tpot
    for value, limit in ((ttft, t.ttft_limit), (tpot, t.tpot_limit), (objective, t.e2e_limit)):
        if limit is not None and value > limit:
            return None
    return objective


def presolve_candidates(problem: PlanningProblem, screen: bool = True) -> Screening:
    """Drop candidates that provably cannot be feasible or optimal; keep an incumbent for hints.

    Screening runs on the vectorized bounds of every candidate (`classify`); full tables are built
    only for the candidates whose bound comes within the incumbent's value (taken in increasing
    order of the bound, so the scan stops at the first one above it). With screen=False every
    candidate enters the model (used by tests of the formulation itself).
    """
    screening = Screening()
    if not screen:
        screening.kept = list(problem.tables)
        for t in problem.tables:
            split = balanced_boundaries(problem.num_layers, t.pp)
            value = evaluate_split(problem, t, split)
            if value is not None and (screening.incumbent is None or value < screening.incumbent[2]):
                screening.incumbent = (t, split, value)
        return screening
    verdict = classify(problem)
    survivors = []
    for i, reason in enumerate(verdict.reasons):
        if reason is None:
            survivors.append(i)
        else:
            screening.remove(reason)
    survivors.sort(key=lambda i: (verdict.objective_lb[i], i))
    best: tuple[int, int] | None = None  # (balanced-split objective, index) of the incumbent
    scanned: list[tuple[CandidateTable, _Bounds]] = []
    for i in survivors:
        if best is not None and verdict.objective_lb[i] - verdict.slack[i] > best[0]:
            break  # this bound and every later one exceed a feasible plan
        t = problem.table(i)
        scanned.append((t, _bounds(problem, t)))
        split = balanced_boundaries(problem.num_layers, t.pp)
        value = evaluate_split(problem, t, split)
        if value is not None and (best is None or (value, i) < best):
            best = (value, i)
            screening.incumbent = (t, split, value)
    screening.kept = sorted((t for t, b in scanned if best is None or b.objective_lb <= best[0]),
                            key=lambda t: t.index)
    for _ in range(len(survivors) - len(screening.kept)):
        screening.remove("dominated")
    return screening


# ---- the model ----------------------------------------------------------------------------------
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
        self._family: dict[str, cp_model.IntVar] = {}
        self._with_assumptions = with_assumptions
        self.tables = screening.kept
        self.bounds = {t.index: _bounds(problem, t) for t in self.tables}
        self._use: dict[int, cp_model.IntVar] = {}
        self._boundary: dict[int, list[cp_model.IntVar]] = {}
        self._count: dict[int, list[list[cp_model.LinearExprT]]] = {}
        self._aux: list[cp_model.IntVar] = []  # helper variables of the layer-pattern counts
        self._objective_terms: list[cp_model.LinearExprT] = []
        self._add_candidate_choice()
        for pp in sorted({t.pp for t in self.tables}):
            self._add_stage_boundaries(pp)
        for count, t in enumerate(self.tables):
            if deadline is not None and count % 256 == 0:
                deadline.enforce("infeasibility core")
            self._add_candidate(t)
        self.model.minimize(sum(self._objective_terms))
        if with_assumptions:
            self.model.add_assumptions(list(self._family.values()))

    # -- queries
    def use(self, t: CandidateTable) -> cp_model.IntVar:
        return self._use[t.index]

    def stage_counts(self, pp: int, stage: int) -> list[cp_model.LinearExprT]:
        """Layers of each kind on `stage` of a `pp`-stage pipeline (linear expressions)."""
        before, after = self._count[pp][stage], self._count[pp][stage + 1]
        return [a - b for a, b in zip(after, before, strict=True)]

    def family(self, name: str) -> list[cp_model.IntVar]:
        """Enforcement literals of a constraint family (none unless built with assumptions)."""
        if not self._with_assumptions:
            return []
        if name not in self._family:
            self._family[name] = self.model.new_bool_var(name)
        return [self._family[name]]

    # -- constraint families
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
        bnd = self.bounds[t.index]
        use = self.use(t)
        max_prefill = self.model.new_int_var(0, bnd.prefill_sum, f"max_prefill_{t.index}")
        max_decode = self.model.new_int_var(0, bnd.decode_sum, f"max_decode_{t.index}")
        tpot = self.model.new_int_var(0, t.decode_microbatches * bnd.decode_sum, f"tpot_{t.index}")
        for s in range(t.pp):
            counts = self.stage_counts(t.pp, s)
            prefill = sum(c * n for c, n in zip(t.prefill_per_kind, counts, strict=True))
            decode = sum(c * n for c, n in zip(t.decode_per_kind, counts, strict=True))
            memory = sum(c * n for c, n in zip(t.memory_per_kind, counts, strict=True))
            self.model.add(max_prefill >= prefill + t.prefill_extra[s]).only_enforce_if(use)
            self.model.add(max_decode >= decode + t.decode_extra[s]).only_enforce_if(use)
            self.model.add(memory + t.memory_extra[s] <= t.memory_limit).only_enforce_if(
                [use, *self.family(f"memory on pipeline stage {s}")])
        # TPOT = max(sum of stages, micro-batches x slowest stage)
        self.model.add(tpot >= bnd.decode_sum * use)
        self.model.add(tpot >= t.decode_microbatches * max_decode)
        # redundant bounds: the bottleneck is at least the average stage
        self.model.add(max_prefill >= bnd.max_prefill_lb * use)
        self.model.add(max_decode >= bnd.max_decode_lb * use)
        ttft = bnd.prefill_sum * use + (t.prefill_microbatches - 1) * max_prefill
        if t.ttft_limit is not None:
            self.model.add(ttft <= t.ttft_limit).only_enforce_if(self.family("slo.ttft_ms"))
        if t.tpot_limit is not None:
            self.model.add(tpot <= t.tpot_limit).only_enforce_if(self.family("slo.tpot_ms"))
        if t.e2e_limit is not None:
            self.model.add(ttft + t.output_tokens * tpot <= t.e2e_limit).only_enforce_if(
                self.family("slo.e2e_latency_ms"))
        self._objective_terms.append(ttft + t.output_tokens * tpot)
        self._bottlenecks = getattr(self, "_bottlenecks", {})
        self._bottlenecks[t.index] = (max_prefill, max_decode, tpot)

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
        objective = int(round(solver.objective_value))
        best_bound = int(math.floor(solver.best_objective_bound + 1e-6))
        return CpSatResult(status, objective, best_bound, chosen, bounds, work, self.screening, stopped)


# The core puts every candidate into one model (three constraints per pipeline stage each); above
# this many stages in total it is not built, and the screening counts name what binds instead.
MAX_CORE_STAGE_ROWS = 100_000
MAX_CORE_SOLVES = 24  # feasibility checks for one core (CP-SAT's deterministic time misses presolve)


def _core_model(problem: PlanningProblem, deadline: Deadline | None) -> PlacementModel | None:
    """Every candidate behind assumption literals; None when there are too many candidate stages
    or the deadline passes while building."""
    if not problem.num_candidates:
        return None
    rows = int(problem.table_grid().pp.sum())
    if rows > MAX_CORE_STAGE_ROWS:
        log.info("infeasibility core skipped: %d stage rows over all candidates", rows)
        return None
    try:
        for index in range(problem.num_candidates):  # every full table, within the deadline
            if deadline is not None and index % 256 == 0:
                deadline.enforce("infeasibility core")
            problem.table(index)
        return PlacementModel(problem, Screening(kept=problem.tables), with_assumptions=True,
                              deadline=deadline)
    except DeadlineExceeded:
        return None


def binding_families(problem: PlanningProblem, deadline: Deadline | None = None,
                     work_limit: float = CORE_WORK) -> list[str] | None:
    """Constraint families that together make the problem infeasible, from CP-SAT's sufficient
    assumptions (single worker, every candidate in the model), minimized by deletion: first a
    whole group (every "memory on pipeline stage" family), then one family at a time. None when
    not proven within the limits: work (deterministic time and solve count) or the deadline."""
    model = _core_model(problem, deadline)
    if model is None:
        return None
    spent = {"work": 0.0, "solves": 0}

    def out_of_work() -> bool:
        return (spent["work"] >= work_limit or spent["solves"] >= MAX_CORE_SOLVES
                or (deadline is not None and deadline.check("infeasibility core")))

    def infeasible_with(literals: list[cp_model.IntVar]) -> list[int] | None:
        """Sufficient assumption indices if infeasible with only `literals` enforced."""
        model.model.clear_assumptions()
        model.model.add_assumptions(literals)
        solver = new_cp_solver(max(0.0, work_limit - spent["work"]), deadline)
        solver.parameters.stop_after_first_solution = True  # feasibility is all that is asked
        solver.parameters.cp_model_presolve = False  # 10x faster here, and its work is not counted
        status = status_of(solver, solver.solve(model.model), model.model)
        spent["work"] += solver.deterministic_time
        spent["solves"] += 1
        stop_reason(solver, status, deadline, "infeasibility core")
        if status != "infeasible":
            return None
        return list(solver.sufficient_assumptions_for_infeasibility())

    by_index = {var.index: var for var in model._family.values()}
    core = infeasible_with(list(by_index.values()))
    if core is None:
        return None
    kept = [by_index[i] for i in core if i in by_index]
    memory = [v for name, v in model._family.items() if name.startswith("memory on")]
    groups = [memory] if len([v for v in kept if v in memory]) > 1 else []
    for group in groups + [[v] for v in list(kept)]:
        trial = [v for v in kept if all(v is not g for g in group)]
        if len(trial) == len(kept) or out_of_work():
            continue
        if infeasible_with(trial) is not None:
            kept = trial
    names = {var.index: name for name, var in model._family.items()}
    return sorted(names[v.index] for v in kept)


def solve_cpsat(problem: PlanningProblem, settings: SolverSettings) -> CpSatResult:
    screening = presolve_candidates(problem, settings.screen_candidates)
    log.info("candidates kept %d, removed %s", len(screening.kept), screening.removed)
    if not screening.kept:
        return CpSatResult("infeasible", None, None, None, [], 0.0, screening)
    return PlacementModel(problem, screening).solve(settings.with_deadline())
