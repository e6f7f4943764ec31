"""The machinery of the infeasibility relaxations (planning/relax.py): a relaxation's result,
the report, and the search that solves relaxed copies of a condition within fixed limits."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from solver.document.plan import Plan
from solver.errors import InfeasibleError, InputError
from solver.inputs.condition import Condition, build_condition
from solver.optimize.settings import SolverSettings
from solver.planning.modes import plan_serving
from solver.runtime.interrupts import checkpoint

# The search is bounded by work, not wall time, so infeasibility.md does not depend on machine
# load: at most this many solves, each with smaller deterministic limits than a plan's own solve
# (only feasibility matters here). The run's --time-limit deadline is the safety net.
MAX_RELAXATION_SOLVES = 60
RELAXATION_PLAN_WORK = 10.0
RELAXATION_PLACEMENT_WORK = 1.0


@dataclass(frozen=True)
class Relaxation:
    kind: str  # gpus | slo | rate | precision | batch | policy
    changes: dict[str, Any]  # dotted condition key -> new value (empty: no fix found)
    summary: str
    plan: str = ""  # the plan the relaxed condition solves to

    @property
    def found(self) -> bool:
        return bool(self.changes)


@dataclass
class InfeasibilityReport:
    name: str
    source: str
    message: str
    binding: list[str]
    relaxations: list[Relaxation] = field(default_factory=list)
    solves: int = 0
    solve_limit: int = MAX_RELAXATION_SOLVES
    budget_hit: str | None = None  # None | "solves" (solve_limit reached) | "time" (--time-limit)


def apply_changes(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of condition data with dotted keys set (None deletes the key)."""
    out = copy.deepcopy(data)
    for key, value in changes.items():
        target = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = target.get(part)
            if not isinstance(node, dict):
                node = {}
                target[part] = node
            target = node
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return out


class RelaxSearch:
    """Solves relaxed copies of one condition, at most `solve_limit` of them, within the run's
    deadline."""

    def __init__(self, condition: Condition, settings: SolverSettings,
                 solve_limit: int = MAX_RELAXATION_SOLVES) -> None:
        self.condition = condition
        self.solve_limit = solve_limit
        self.settings = dataclasses.replace(
            settings.with_deadline(),
            name_binding_core=False,  # only feasibility matters while searching for fixes
            plan_work=min(settings.plan_work, RELAXATION_PLAN_WORK),
            placement_work=min(settings.placement_work, RELAXATION_PLACEMENT_WORK),
        )
        self.deadline = self.settings.deadline
        assert self.deadline is not None
        self.budget_hit: str | None = None
        self.solves = 0

    def out_of_time(self) -> bool:
        if self.budget_hit is None and self.solves >= self.solve_limit:
            self.budget_hit = "solves"
        if self.budget_hit is None and self.deadline.check("relaxations"):
            self.budget_hit = "time"
        return self.budget_hit is not None

    def attempt(self, changes: dict[str, Any]) -> Plan | None:
        """The optimal plan of the relaxed condition, or None (infeasible, invalid or no time)."""
        if self.out_of_time():
            return None
        data = apply_changes(self.condition.raw, changes)
        try:
            relaxed = build_condition(data, self.condition.source, self.condition.name)
            checkpoint("relaxing")
            self.solves += 1
            return plan_serving(relaxed, settings=self.settings).plan  # in its serving mode
        except (InfeasibleError, InputError):
            return None


def plan_label(plan: Plan) -> str:
    m = plan.metrics
    if plan.pools is not None:  # a disaggregated plan: each pool's instances and shape
        shapes = " + ".join(f"{p.instances} {name} x {p.plan.gpus.per_replica} GPUs" for name, p in
                            (("prefill", plan.pools.prefill), ("decode", plan.pools.decode)))
        where = f"{shapes} on {plan.gpus.used} GPUs"
    else:
        where = f"{plan.parallelism.shape().label}, batch {plan.batch_size} on {plan.gpus.used} GPUs"
    return f"{where}: TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms"
