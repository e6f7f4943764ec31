"""How the optimizer runs: threads, seed, work limits, the run's deadline, and what it explains."""

from __future__ import annotations

from dataclasses import dataclass, replace

from solver.physics.placement import PLACEMENT_WORK
from solver.runtime.limits import PLAN_SOLVE_WORK, Deadline


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
