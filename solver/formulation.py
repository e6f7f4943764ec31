"""CP-SAT model: choose one (shape, batch) candidate and the layer-to-stage split, proven optimal.

Variables
  use[c]            one-hot over candidates (AddExactlyOne)
  boundary[P][s]    stage s of a P-stage pipeline holds layers [boundary[P][s], boundary[P][s+1])
  count[P][s][k]    layers of kind k before boundary s (AddElement on constant prefix arrays)
  max_prefill[c], max_decode[c], tpot[c]  per-candidate bottlenecks (0 unless chosen)
Objective (integer, tables.py units): sum_c  SP_c*use[c] + (m_p-1)*max_prefill[c] + out*tpot[c]
which equals TTFT + out*TPOT of the chosen candidate in its own units (OBJECTIVE_SCALE x objective).

Stage times are linear in the kind counts, so no products of decision variables appear. Per-candidate
lower bounds (a stage is at least total/pp and at least its fixed extras) tighten the relaxation.
Candidates whose lower bound already breaks memory or an SLO, or exceeds a feasible greedy plan's
objective, are removed before the model is built (`presolve_candidates`); their counts are reported.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from solver.interrupts import stop_on_sigint
from solver.problem import PlanningProblem
from solver.tables import CandidateTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float = 60.0
    num_workers: int = 2
    random_seed: int = 0
    log_search_progress: bool = False
    screen_candidates: bool = True  # drop candidates by proven bounds before building the model
    name_binding_core: bool = True  # when infeasible, minimize a CP-SAT core of constraint families


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
    seconds: float
    screening: Screening


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
    totals = problem.counts(0, problem.num_layers)
    pp = t.pp
    layer_p = t.stage_prefill(totals, 0) - t.prefill_extra[0]
    layer_d = t.stage_decode(totals, 0) - t.decode_extra[0]
    layer_m = t.stage_memory(totals, 0) - t.memory_extra[0]
    sp, sd = layer_p + sum(t.prefill_extra), layer_d + sum(t.decode_extra)
    lightest = [min(c for c, n in zip(v, totals, strict=True) if n) for v in
                (t.prefill_per_kind, t.decode_per_kind, t.memory_per_kind)]
    mp = max(math.ceil(sp / pp), max(t.prefill_extra) + lightest[0])
    md = max(math.ceil(sd / pp), max(t.decode_extra) + lightest[1])
    mem = max(math.ceil((layer_m + sum(t.memory_extra)) / pp), max(t.memory_extra) + lightest[2])
    obj = t.objective(sp, mp, sd, md)
    return _Bounds(sp, sd, mp, md, mem, obj)


def bound_violation(t: CandidateTable, b: _Bounds) -> str | None:
    """The constraint family a candidate breaks even with a perfectly balanced split, if any."""
    if b.memory_lb > t.memory_limit:
        return "memory"
    ttft_lb = b.prefill_sum + (t.prefill_microbatches - 1) * b.max_prefill_lb
    tpot_lb = max(b.decode_sum, t.decode_microbatches * b.max_decode_lb)
    if t.ttft_limit is not None and ttft_lb > t.ttft_limit:
        return "ttft_slo"
    if t.tpot_limit is not None and tpot_lb > t.tpot_limit:
        return "tpot_slo"
    if t.e2e_limit is not None and b.objective_lb > t.e2e_limit:
        return "e2e_slo"
    return None


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

    With screen=False every candidate enters the model (used by tests of the formulation itself).
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
    survivors: list[tuple[CandidateTable, _Bounds]] = []
    for t in problem.tables:
        b = _bounds(problem, t)
        reason = bound_violation(t, b)
        if reason is not None:
            screening.remove(reason)
            continue
        survivors.append((t, b))
        split = balanced_boundaries(problem.num_layers, t.pp)
        value = evaluate_split(problem, t, split)
        if value is not None and (screening.incumbent is None or value < screening.incumbent[2]):
            screening.incumbent = (t, split, value)
    best = screening.incumbent[2] if screening.incumbent else None
    for t, b in survivors:
        if best is not None and b.objective_lb > best:
            screening.remove("dominated")
        else:
            screening.kept.append(t)
    return screening


# ---- the model ----------------------------------------------------------------------------------
class PlacementModel:
    """Builds the CP-SAT model for the kept candidates; `solve()` returns a CpSatResult."""

    def __init__(self, problem: PlanningProblem, screening: Screening,
                 with_assumptions: bool = False) -> None:
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
        self._objective_terms: list[cp_model.LinearExprT] = []
        self._add_candidate_choice()
        for pp in sorted({t.pp for t in self.tables}):
            self._add_stage_boundaries(pp)
        for t in self.tables:
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
        counts: list[list[cp_model.LinearExprT]] = []
        for s in range(pp + 1):
            row: list[cp_model.LinearExprT] = []
            for kind in self.problem.kinds:
                prefix = self.problem.prefix_counts[kind]
                if s == 0:
                    row.append(0)
                elif s == pp:
                    row.append(prefix[n])
                elif prefix[n] == 0:
                    row.append(0)
                else:
                    var = self.model.new_int_var(0, prefix[n], f"count_pp{pp}_{s}_{kind.label}")
                    self.model.add_element(b[s], prefix, var)
                    row.append(var)
            counts.append(row)
        self._count[pp] = counts

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
    def solve(self, settings: SolverSettings) -> CpSatResult:
        self._add_hint()
        solver = cp_model.CpSolver()
        solver.parameters.catch_sigint_signal = False  # Ctrl-C stays Python's (KeyboardInterrupt)
        stop_on_sigint(solver)
        solver.parameters.max_time_in_seconds = settings.time_limit_s
        solver.parameters.num_workers = settings.num_workers
        solver.parameters.random_seed = settings.random_seed
        solver.parameters.log_search_progress = settings.log_search_progress
        code = solver.solve(self.model)
        status = {
            cp_model.OPTIMAL: "optimal",
            cp_model.FEASIBLE: "feasible",
            cp_model.INFEASIBLE: "infeasible",
        }.get(code, "unknown")
        if status not in ("optimal", "feasible"):
            bound = None
            if status == "unknown":
                bound = int(math.floor(solver.best_objective_bound + 1e-6))
            return CpSatResult(status, None, bound, None, [], solver.wall_time, self.screening)
        chosen = next(t for t in self.tables if solver.boolean_value(self.use(t)))
        bounds = [int(solver.value(v)) for v in self._boundary[chosen.pp]]
        objective = int(round(solver.objective_value))
        best_bound = int(math.floor(solver.best_objective_bound + 1e-6))
        return CpSatResult(status, objective, best_bound, chosen, bounds, solver.wall_time,
                           self.screening)


def binding_families(problem: PlanningProblem, time_limit_s: float = 10.0) -> list[str] | None:
    """Constraint families that together make the problem infeasible, from CP-SAT's sufficient
    assumptions (single worker, every candidate in the model). None when not proven in time."""
    if not problem.tables:
        return None
    model = PlacementModel(problem, presolve_candidates(problem, screen=False), with_assumptions=True)
    deadline = time.monotonic() + time_limit_s

    def infeasible_with(literals: list[cp_model.IntVar]) -> list[int] | None:
        """Sufficient assumption indices if infeasible with only `literals` enforced."""
        model.model.clear_assumptions()
        model.model.add_assumptions(literals)
        solver = cp_model.CpSolver()
        solver.parameters.catch_sigint_signal = False  # Ctrl-C stays Python's (KeyboardInterrupt)
        stop_on_sigint(solver)
        solver.parameters.num_workers = 1
        solver.parameters.stop_after_first_solution = True  # feasibility is all that is asked
        solver.parameters.max_time_in_seconds = max(0.1, deadline - time.monotonic())
        if solver.solve(model.model) != cp_model.INFEASIBLE:
            return None
        return list(solver.sufficient_assumptions_for_infeasibility())

    by_index = {var.index: var for var in model._family.values()}
    core = infeasible_with(list(by_index.values()))
    if core is None:
        return None
    kept = [by_index[i] for i in core if i in by_index]
    # deletion-based minimization: drop each family whose removal keeps the problem infeasible
    for literal in list(kept):
        if time.monotonic() > deadline:
            break
        trial = [v for v in kept if v is not literal]
        if infeasible_with(trial) is not None:
            kept = trial
    names = {var.index: name for name, var in model._family.items()}
    return sorted(names[v.index] for v in kept)


def solve_cpsat(problem: PlanningProblem, settings: SolverSettings) -> CpSatResult:
    screening = presolve_candidates(problem, settings.screen_candidates)
    log.info("candidates kept %d, removed %s", len(screening.kept), screening.removed)
    if not screening.kept:
        return CpSatResult("infeasible", None, None, None, [], 0.0, screening)
    return PlacementModel(problem, screening).solve(settings)
