"""Search limits: deterministic work limits decide every answer; one wall-clock deadline per run is
only a safety net.

Every search stops on a limit that does not depend on machine load, so the same condition gives the
same plan.json on a quiet and on a busy machine:

    CP-SAT solves    `max_deterministic_time` (CP-SAT's own count of work, in "deterministic
                     seconds"), single-threaded or proven optimal before it matters
    expert packing   one deterministic total per problem (placement.py)
    relaxations      a number of solves (relax.py)

`Deadline` is the run-wide `--time-limit`: created once when a run starts, handed down, and every
stage (placement, the plan's model, the infeasibility core, relaxations, rendering) gets what
remains. It is never hit on the bundled conditions; when it is, the stage records it and the plan
and the console say so (the answer may then depend on machine load).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from solver.runtime.interrupts import stop_on_sigint

if TYPE_CHECKING:  # ortools is imported where a solver is built (start-up time)
    from ortools.sat.python import cp_model

# CP-SAT deterministic time ("work") allowed per search; one unit is roughly a second of one core
PLAN_SOLVE_WORK = 60.0  # the plan's model (formulation.PlacementModel)
CANONICAL_SOLVE_WORK = 30.0  # lowest candidate index among optimal plans (planner._canonical)
CORE_WORK = 10.0  # all solves naming the binding constraint families together


@dataclass
class Deadline:
    """Wall-clock safety net shared by every stage of one run (`--time-limit`)."""

    limit_s: float
    started: float = field(default_factory=time.monotonic)
    hits: list[str] = field(default_factory=list)  # stages the deadline cut short, in order

    def remaining_s(self) -> float:
        return max(0.0, self.started + self.limit_s - time.monotonic())

    def expired(self) -> bool:
        return self.remaining_s() <= 0.0

    def hit(self, stage: str) -> None:
        """Record that `stage` stopped because the deadline passed."""
        if stage not in self.hits:
            self.hits.append(stage)

    def check(self, stage: str) -> bool:
        """True (and recorded against `stage`) when no time remains."""
        if self.expired():
            self.hit(stage)
            return True
        return False

    def enforce(self, stage: str) -> None:
        """Raise DeadlineExceeded (recorded against `stage`) when no time remains."""
        if self.check(stage):
            raise DeadlineExceeded(stage)


class DeadlineExceeded(Exception):  # noqa: N818 - a signal between stages, not a user error
    """Raised inside a long step (building a large model) when the run's deadline passes; the
    stage that started the step catches it and reports what it has."""


def new_cp_solver(work_limit: float, deadline: Deadline | None, *, workers: int = 1, seed: int = 0,
                  log: bool = False) -> cp_model.CpSolver:
    """The one place a CpSolver is configured.

    `work_limit` is CP-SAT's deterministic time limit (what decides the answer); the deadline's
    remaining wall time is the safety net. CP-SAT must not install its own SIGINT handler: it
    leaves the default handler behind after a solve, and Ctrl-C would then kill the process
    without a message.
    """
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = workers
    params.random_seed = seed
    params.max_deterministic_time = work_limit
    remaining = math.inf if deadline is None else deadline.remaining_s()
    if math.isfinite(remaining):
        params.max_time_in_seconds = max(remaining, 1e-3)
    params.log_search_progress = log
    params.catch_sigint_signal = False
    stop_on_sigint(solver)  # Ctrl-C stops the search at once; Python then raises KeyboardInterrupt
    return solver


def status_of(solver: cp_model.CpSolver, code: int, model: cp_model.CpModel) -> str:
    """optimal | feasible | infeasible | unknown; an invalid model is a bug and raises."""
    name = solver.status_name(code).lower()
    if name == "model_invalid":
        raise RuntimeError(f"CP-SAT rejected the model: {model.validate()}")
    return name


def stop_reason(solver: cp_model.CpSolver, status: str, deadline: Deadline | None,
                stage: str) -> str | None:
    """Why a solve ended before a proof: 'work' (deterministic, reproducible) or 'time' (the
    wall-clock safety net, recorded on the deadline). None when it proved its answer."""
    if status in ("optimal", "infeasible"):
        return None
    if deadline is not None and deadline.expired():
        deadline.hit(stage)
        return "time"
    return "work"
