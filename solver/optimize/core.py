"""What binds when no plan exists: a minimal, re-verified CP-SAT core over the constraint families.

Every candidate goes into one model whose constraint families (families.FAMILIES: memory on each
pipeline stage, each SLO) sit behind assumption literals. A condition can have several minimal
cores (Llama-70B bf16 on two A100s: memory alone excludes every plan, and so does slo.tpot_ms
alone); the one named is the physical one when there is one: memory alone is tried first, then
the SLOs alone, then everything, and the survivor is minimized by deletion with the SLO families
dropped before the memory stages. The core is named only when it is verified: its members
together are proven infeasible, and dropping any one of them is proven feasible (a solve that ends
on a limit proves nothing, and the core is then not named).

When the screening bounds alone prove that one SLO excludes every plan and a balanced split meets
every other family, that SLO is the only minimal core there is, the one this search would end on;
bound_core.py names it without building the model, whose build and solves took 1-65 s of CPU
on the bundled conditions given an over-tight SLO.
"""

from __future__ import annotations

import logging

from ortools.sat.python import cp_model

from solver.optimize.bound_core import core_from_bounds
from solver.optimize.families import STAGE_FAMILIES
from solver.optimize.formulation import PlacementModel
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import Screening, in_range
from solver.runtime.limits import CORE_WORK, Deadline, DeadlineExceeded, new_cp_solver, status_of, stop_reason

log = logging.getLogger(__name__)

# The core puts every candidate into one model (three constraints per pipeline stage each); above
# this many stages in total it is not built, and the screening counts name what binds instead.
MAX_CORE_STAGE_ROWS = 100_000
MAX_CORE_SOLVES = 24  # feasibility checks for one core (CP-SAT's deterministic time misses presolve)


def _too_large(problem: PlanningProblem) -> bool:
    """No candidate, or more candidate stages than one core model holds."""
    if not problem.num_candidates:
        return True
    rows = int(problem.table_grid().pp.sum())
    if rows > MAX_CORE_STAGE_ROWS:
        log.info("infeasibility core skipped: %d stage rows over all candidates", rows)
        return True
    return False


def _core_model(problem: PlanningProblem, deadline: Deadline | None) -> PlacementModel | None:
    """Every candidate behind assumption literals; None when the deadline passes while building."""
    try:
        for index in range(problem.num_candidates):  # every full table, within the deadline
            if deadline is not None and index % 256 == 0:
                deadline.enforce("infeasibility core")
            problem.table(index)
        kept = [t for t in problem.tables if in_range(problem, t)]
        return PlacementModel(problem, Screening(kept=kept), with_assumptions=True,
                              deadline=deadline)
    except DeadlineExceeded:
        return None


class _Solves:
    """Feasibility solves of the core model with some assumption literals enforced, counted
    against the work limits."""

    def __init__(self, model: PlacementModel, deadline: Deadline | None, work_limit: float) -> None:
        self.model, self.deadline, self.work_limit = model, deadline, work_limit
        self.work, self.count = 0.0, 0

    def out_of_work(self) -> bool:
        return (self.work >= self.work_limit or self.count >= MAX_CORE_SOLVES
                or (self.deadline is not None and self.deadline.check("infeasibility core")))

    def status(self, literals: list[cp_model.IntVar]) -> tuple[str, list[int]]:
        """'infeasible' (with the indices of sufficient assumptions), 'feasible' or 'unknown'."""
        if self.out_of_work():
            return "unknown", []
        model = self.model.model
        model.clear_assumptions()
        model.add_assumptions(literals)
        solver = new_cp_solver(max(0.0, self.work_limit - self.work), self.deadline)
        solver.parameters.stop_after_first_solution = True  # feasibility is all that is asked
        solver.parameters.cp_model_presolve = False  # 10x faster here, and its work is not counted
        status = status_of(solver, solver.solve(model), model)
        self.work += solver.deterministic_time
        self.count += 1
        stop_reason(solver, status, self.deadline, "infeasibility core")
        if status == "infeasible":
            return status, list(solver.sufficient_assumptions_for_infeasibility())
        return ("feasible" if status in ("feasible", "optimal") else "unknown"), []


def _first_infeasible(solves: _Solves, candidates: list[list[cp_model.IntVar]]
                      ) -> list[cp_model.IntVar] | None:
    """The first proven-infeasible set of literals, narrowed to CP-SAT's sufficient assumptions."""
    for literals in candidates:
        if not literals:
            continue
        status, sufficient = solves.status(literals)
        if status == "infeasible":
            by_index = {v.index: v for v in literals}
            narrowed = [by_index[i] for i in sufficient if i in by_index]
            return narrowed or literals
    return None


def _minimal_core(solves: _Solves, start: list[cp_model.IntVar], rank: dict[int, int]
                  ) -> list[cp_model.IntVar] | None:
    """Deletion over `start` (re-proven infeasible here) in increasing `rank` (SLO families
    first, memory last); None unless every
    member is verified: dropping it is proven feasible (for a single member: the problem without
    any family has a plan)."""
    kept = list(start)
    status, _ = solves.status(kept)
    if status != "infeasible":
        return None
    for var in sorted(start, key=lambda v: (rank.get(v.index, 0), v.index)):
        trial = [v for v in kept if v is not var]
        status, _ = solves.status(trial)
        if status == "infeasible":
            kept = trial
        elif status != "feasible":
            return None  # not proven within the limits
    # Every member left was proven needed: dropping it from a superset of the final core gave a
    # plan, and dropping it from the core (fewer constraints still) does too.
    return kept


def binding_families(problem: PlanningProblem, deadline: Deadline | None = None,
                     work_limit: float = CORE_WORK, *, from_bounds: bool = True) -> list[str] | None:
    """A minimal set of constraint families that together make the problem infeasible, memory
    preferred, re-verified member by member. None when not proven within the limits: work
    (deterministic time and solve count) or the deadline. `from_bounds`: a single SLO that the
    screening bounds prove to be the core is named without the model (bound_core.py; tests turn
    it off to compare with the CP-SAT search)."""
    if _too_large(problem):
        return None
    if deadline is not None and deadline.check("infeasibility core"):
        return None  # as _core_model would, before its first table
    if from_bounds:
        named = core_from_bounds(problem)
        if named is not None:
            return named
    model = _core_model(problem, deadline)
    if model is None:
        return None
    solves = _Solves(model, deadline, work_limit)
    literals = model.family_literals
    # the stage-memory families imply one another (weights <= weights + KV cache): the narrower
    # one, memory, is tried alone first and kept longest, then the KV capacity
    memory_vars, kv_vars = ([v for name, v in literals.items() if name.startswith(f.core_prefix)]
                            for f in STAGE_FAMILIES)
    stage = {v.index for v in memory_vars + kv_vars}
    slo_vars = [v for v in literals.values() if v.index not in stage]
    start = _first_infeasible(solves, [memory_vars, memory_vars + kv_vars, slo_vars,
                                       memory_vars + kv_vars + slo_vars])
    if start is None:
        return None
    rank = {v.index: 1 for v in kv_vars} | {v.index: 2 for v in memory_vars}  # SLOs go first
    kept = _minimal_core(solves, start, rank)
    if kept is None:
        return None
    names = {var.index: name for name, var in literals.items()}
    return sorted(names[v.index] for v in kept)

