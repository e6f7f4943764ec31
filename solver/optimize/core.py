"""What binds when no plan exists: a minimized CP-SAT core over the constraint families.

Every candidate goes into one model whose constraint families (families.FAMILIES: memory on each
pipeline stage, each SLO) sit behind assumption literals; a single-worker feasibility solve gives
sufficient assumptions, which are minimized by deletion (first a whole group, every "memory on
pipeline stage" family, then one family at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ortools.sat.python import cp_model

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
        kept = [t for t in problem.tables if in_range(problem, t)]
        return PlacementModel(problem, Screening(kept=kept), with_assumptions=True,
                              deadline=deadline)
    except DeadlineExceeded:
        return None


def binding_families(problem: PlanningProblem, deadline: Deadline | None = None,
                     work_limit: float = CORE_WORK) -> list[str] | None:
    """Constraint families that together make the problem infeasible, minimized by deletion. None
    when not proven within the limits: work (deterministic time and solve count) or the deadline."""
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

    literals = model.family_literals
    by_index = {var.index: var for var in literals.values()}
    core = infeasible_with(list(by_index.values()))
    if core is None:
        return None
    kept = [by_index[i] for i in core if i in by_index]
    kept = _narrowest(kept, literals, infeasible_with, out_of_work)
    groups = []
    for family in STAGE_FAMILIES:  # every stage of a memory family at once first
        group = [v for name, v in literals.items() if name.startswith(family.core_prefix)]
        if len([v for v in kept if v in group]) > 1:
            groups.append(group)
    for group in groups + [[v] for v in list(kept)]:
        trial = [v for v in kept if all(v is not g for g in group)]
        if len(trial) == len(kept) or out_of_work():
            continue
        if infeasible_with(trial) is not None:
            kept = trial
    names = {var.index: name for name, var in literals.items()}
    return sorted(names[v.index] for v in kept)


def _narrowest(kept: list[cp_model.IntVar], literals: dict[str, cp_model.IntVar],
               infeasible_with: Callable[[list[cp_model.IntVar]], list[int] | None],
               out_of_work: Callable[[], bool]) -> list[cp_model.IntVar]:
    """A core naming the KV capacity, but whose weights alone already do not fit, names memory
    instead: the stage-memory families imply one another (weights <= weights + KV), and the
    narrower one is the reason a reviewer can act on."""
    first, second = STAGE_FAMILIES
    wide = [v for name, v in literals.items() if name.startswith(second.core_prefix)]
    narrow = [v for name, v in literals.items() if name.startswith(first.core_prefix)]
    if not any(v in wide for v in kept) or not narrow or out_of_work():
        return kept
    trial = [v for v in kept if v not in wide] + narrow
    return trial if infeasible_with(trial) is not None else kept
