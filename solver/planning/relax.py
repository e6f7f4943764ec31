"""Why a condition is infeasible, and the smallest changes that make it feasible.

Each relaxation changes one thing in the condition and solves again (the same planner, smaller
deterministic work limits), so every fix it reports is a plan that exists:

    GPUs       fixed cluster: the fewest nodes of the same kind (num_nodes scanned upward from a
               weights-only memory bound); ample GPUs: the smallest max_gpus on the deployable grid
    SLOs       per SLO: the tightest value that admits a plan (geometric bisection between the
               given value and the metric of the best plan without that SLO, to 1%)
    rate       workload.request_rate: the largest rate served (bisection down from the rate
               asked, to 1%)
    precision  the first of: fp8 KV cache, fp8 weights, both, fp4 weights, fp4 weights + fp8 KV
    batch      a fixed batch_size: the largest smaller batch that admits a plan
    policy     the pinned degree lists removed

Feasibility is monotone in SLO values (a looser SLO admits every plan a tighter one did), which is
what makes the bisection exact up to its tolerance; GPU counts and batches are scanned, not
bisected, because divisibility makes them non-monotone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from solver.document.plan import Plan
from solver.errors import InfeasibleError, InputError
from solver.inputs.cards import BYTES_PER_ELEMENT
from solver.inputs.condition import DEGREE_NAMES, MAX_GPUS, Condition, build_condition
from solver.optimize.settings import SolverSettings
from solver.physics.architecture import Architecture
from solver.planning.planner import solve
from solver.runtime.interrupts import checkpoint

SLO_METRICS = {"ttft_ms": "ttft_ms", "tpot_ms": "tpot_ms", "e2e_latency_ms": "e2e_latency_ms"}
SLO_TOLERANCE = 1.01  # bisection stops when hi / lo <= this
MAX_NODE_STEPS = 48
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


class _Search:
    """Solves relaxed copies of one condition, at most MAX_RELAXATION_SOLVES of them, within the
    run's deadline."""

    def __init__(self, condition: Condition, settings: SolverSettings) -> None:
        self.condition = condition
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
        if self.budget_hit is None and self.solves >= MAX_RELAXATION_SOLVES:
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
            return solve(relaxed, settings=self.settings).plan
        except (InfeasibleError, InputError):
            return None


def _label(plan: Plan) -> str:
    m = plan.metrics
    return (
        f"{plan.parallelism.shape().label}, batch {plan.batch_size} on {plan.gpus.used} GPUs: "
        f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms"
    )


# ---- GPUs ----------------------------------------------------------------------------------------


def _min_gpus_for_weights(condition: Condition) -> int:
    """Weights alone must fit: total weight bytes / usable bytes per GPU (a lower bound)."""
    c = condition.cluster
    weights = (
        Architecture(condition.model).total_params * BYTES_PER_ELEMENT[condition.precision.weights]
    )
    per_gpu = c.usable_memory_bytes - c.runtime_overhead_bytes
    return 1 if per_gpu <= 0 else max(1, math.ceil(weights / per_gpu))


def relax_gpus(search: _Search) -> Relaxation:
    c = search.condition.cluster
    if not c.fixed:
        return _relax_max_gpus(search)
    per_node = c.gpus_per_node
    nodes = max(c.num_nodes + 1, -(-_min_gpus_for_weights(search.condition) // per_node))
    tried: list[int] = []
    while nodes * per_node <= MAX_GPUS and len(tried) < MAX_NODE_STEPS and not search.out_of_time():
        tried.append(nodes)
        plan = search.attempt({"hardware.num_nodes": nodes, "hardware.gpus_per_node": per_node})
        if plan is not None:
            return Relaxation(
                "gpus",
                {"hardware.num_nodes": nodes, "hardware.gpus_per_node": per_node},
                f"hardware.num_nodes: {c.num_nodes} -> {nodes} ({nodes * per_node} x "
                f"{c.gpu.name}, {per_node} per node)",
                _label(plan),
            )
        nodes = nodes + 1 if len(tried) < MAX_NODE_STEPS // 2 else nodes * 2
    return Relaxation(
        "gpus",
        {},
        f"more {c.gpu.name} nodes ({per_node} GPUs each) do not help: "
        f"num_nodes {_ranges(tried)} tried"
        if tried
        else "no larger cluster fits the limit",
    )


def _ranges(values: list[int]) -> str:
    """[2, 3, 4, 8, 16] -> "2-4, 8, 16"."""
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def _relax_max_gpus(search: _Search) -> Relaxation:
    c = search.condition.cluster
    limit = c.num_gpus * 2
    while limit <= MAX_GPUS and not search.out_of_time():
        plan = search.attempt({"hardware.max_gpus": limit})
        if plan is not None:
            used = plan.gpus.used  # on the deployable grid, so max_gpus = used keeps this plan
            final = search.attempt({"hardware.max_gpus": used}) or plan
            return Relaxation(
                "gpus",
                {"hardware.max_gpus": used},
                f"hardware.max_gpus: {c.num_gpus} -> {used}",
                _label(final),
            )
        limit *= 2
    return Relaxation("gpus", {}, f"no count up to max_gpus {MAX_GPUS} admits a plan")


# ---- SLOs ----------------------------------------------------------------------------------------


def _nice_up(value: float) -> float:
    """Round up to 3 significant digits (a looser SLO keeps the plan feasible)."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return math.ceil(value / scale - 1e-9) * scale


def _nice_down(value: float) -> float:
    """Round down to 3 significant digits (a lower rate keeps the plan feasible)."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return math.floor(value / scale) * scale


def _bisect(search: _Search, key: str, admits: float, refuses: float) -> tuple[float, Plan | None]:
    """Geometric bisection of `key` between a value that admits a plan and one that does not, to
    SLO_TOLERANCE: the last value that admitted one, and its plan (None: no midpoint did)."""
    best = None
    while admits > 0 and max(admits, refuses) / min(admits, refuses) > SLO_TOLERANCE \
            and not search.out_of_time():
        mid = math.sqrt(admits * refuses)
        plan = search.attempt({key: mid})
        if plan is None:
            refuses = mid
        else:
            admits, best = mid, plan
    return admits, best


def relax_slo(search: _Search, key: str) -> Relaxation:
    current = getattr(search.condition.slo, key)
    dotted = f"slo.{key}"
    loose = search.attempt({dotted: None})
    if loose is None:
        return Relaxation(
            "slo", {}, f"{dotted}: removing it alone does not help (another constraint binds)"
        )
    hi, best = _bisect(search, dotted, getattr(loose.metrics, SLO_METRICS[key]), current)
    value = _nice_up(hi)
    plan = search.attempt({dotted: value}) or best or loose
    return Relaxation(
        "slo", {dotted: value}, f"{dotted}: {current:g} -> {value:g} ms", _label(plan)
    )


def relax_rate(search: _Search) -> Relaxation:
    """The largest offered rate (3 significant digits, rounded down) the cluster serves under the
    other constraints: feasibility is monotone in the rate, so bisect between the capacity of the
    best plan without it and the rate asked for."""
    key, asked = "workload.request_rate", search.condition.workload.request_rate
    loose = search.attempt({key: None})
    if loose is None or asked is None or loose.serving is None:
        return Relaxation("rate", {}, f"{key}: removing it alone does not help (another constraint binds)")
    served, best = _bisect(search, key, loose.serving.requests_per_s, asked)
    value = _nice_down(served)
    plan = search.attempt({key: value}) or best or loose
    return Relaxation("rate", {key: value}, f"{key}: {asked:g} -> {value:g} requests/s (the most it "
                      "serves under the other constraints)", _label(plan))


# ---- precision -----------------------------------------------------------------------------------


def relax_precision(search: _Search) -> Relaxation:
    prec = search.condition.precision
    options: list[dict[str, str]] = []
    kv_lower = BYTES_PER_ELEMENT[prec.kv_cache] > 1
    for weights in ("fp8", "fp4"):
        if BYTES_PER_ELEMENT[prec.weights] <= BYTES_PER_ELEMENT[weights]:
            continue
        if not options and kv_lower:
            options.append({"precision.kv_cache": "fp8"})
        options.append({"precision.weights": weights})
        if kv_lower:
            options.append({"precision.weights": weights, "precision.kv_cache": "fp8"})
    if not options and kv_lower:
        options.append({"precision.kv_cache": "fp8"})
    for change in options:
        plan = search.attempt(change)
        if plan is not None:
            before = ", ".join(
                f"{k}: {getattr(prec, k.split('.')[1])} -> {v}" for k, v in change.items()
            )
            return Relaxation("precision", change, before, _label(plan))
    tried = "; ".join(", ".join(f"{k.split('.')[1]} {v}" for k, v in c.items()) for c in options)
    return Relaxation(
        "precision", {}, f"no lower precision admits a plan (tried: {tried or 'none lower'})"
    )


# ---- batch ---------------------------------------------------------------------------------------


def relax_batch(search: _Search) -> Relaxation:
    fixed = search.condition.workload.batch_size
    if fixed is None:
        return Relaxation(
            "batch",
            {},
            "workload.max_batch_size: the planner already tried every batch on its grid down to 1",
        )
    if fixed == 1:
        return Relaxation("batch", {}, "workload.batch_size is already 1")
    feasible, infeasible, plan = None, fixed, None
    candidate = fixed // 2
    while candidate >= 1 and not search.out_of_time():
        plan = search.attempt({"workload.batch_size": candidate})
        if plan is not None:
            feasible = candidate
            break
        infeasible, candidate = candidate, candidate // 2
    if feasible is None or plan is None:
        return Relaxation(
            "batch", {}, f"workload.batch_size: no batch from {fixed - 1} down to 1 admits a plan"
        )
    while infeasible - feasible > 1 and not search.out_of_time():
        mid = (feasible + infeasible) // 2
        trial = search.attempt({"workload.batch_size": mid})
        if trial is None:
            infeasible = mid
        else:
            feasible, plan = mid, trial
    return Relaxation(
        "batch",
        {"workload.batch_size": feasible},
        f"workload.batch_size: {fixed} -> {feasible}",
        _label(plan),
    )


def relax_policy(search: _Search) -> Relaxation | None:
    policy = search.condition.policy
    pinned = [n for n in DEGREE_NAMES if getattr(policy, n) is not None]
    if not pinned:
        return None
    change = {f"policy.{n}": None for n in pinned}
    plan = search.attempt(change)
    if plan is None:
        return Relaxation(
            "policy", {}, f"removing {', '.join(f'policy.{n}' for n in pinned)} does not help"
        )
    return Relaxation(
        "policy", change, f"remove {', '.join(f'policy.{n}' for n in pinned)}", _label(plan)
    )


def explain_infeasibility(
    condition: Condition,
    error: InfeasibleError,
    settings: SolverSettings | None = None,
) -> InfeasibilityReport:
    """Binding constraints of the failed solve, and the smallest relaxation of each kind.

    Bounded by MAX_RELAXATION_SOLVES solves and by `settings.deadline` (the run's --time-limit).
    """
    search = _Search(condition, settings or SolverSettings())
    report = InfeasibilityReport(condition.name, condition.source, str(error), list(error.binding),
                                 solve_limit=MAX_RELAXATION_SOLVES)
    steps: list[Any] = [lambda: relax_gpus(search)]
    steps += [
        lambda k=k: relax_slo(search, k)
        for k in SLO_METRICS
        if getattr(condition.slo, k) is not None
    ]
    if condition.workload.request_rate is not None and condition.cluster.fixed:
        steps.append(lambda: relax_rate(search))
    steps += [
        lambda: relax_precision(search),
        lambda: relax_batch(search),
        lambda: relax_policy(search),
    ]
    for step in steps:
        if search.out_of_time():
            break
        result = step()
        if result is not None:
            report.relaxations.append(result)
    report.solves = search.solves
    report.budget_hit = search.budget_hit
    return report
