"""Why a condition is infeasible, and the smallest changes that make it feasible.

Each relaxation changes one thing in the condition and solves again (the same planner, smaller
deterministic work limits), so every fix it reports is a plan that exists:

    GPUs       fixed cluster: few nodes of the same kind (num_nodes scanned upward from a
               weights-only memory bound one node at a time, then doubling, then bisected back);
               ample GPUs: the smallest max_gpus on the deployable grid; none for mixed clusters
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

import math
from typing import Any

from solver.document.plan import Plan
from solver.errors import InfeasibleError
from solver.inputs.cards import BYTES_PER_ELEMENT
from solver.inputs.condition import DEGREE_NAMES, MAX_GPUS, Condition
from solver.optimize.settings import SolverSettings
from solver.physics.architecture import Architecture
from solver.planning.relax_search import (
    MAX_RELAXATION_SOLVES,
    InfeasibilityReport,
    Relaxation,
    RelaxSearch,
    plan_label,
)

SLO_METRICS = {"ttft_ms": "ttft_ms", "tpot_ms": "tpot_ms", "e2e_latency_ms": "e2e_latency_ms"}
SLO_TOLERANCE = 1.01  # bisection stops when hi / lo <= this
MAX_NODE_STEPS = 48




# ---- GPUs ----------------------------------------------------------------------------------------


def _min_gpus_for_weights(condition: Condition) -> int:
    """Weights alone must fit: total weight bytes / usable bytes per GPU (a lower bound)."""
    c = condition.cluster
    weights = (
        Architecture(condition.model).total_params * BYTES_PER_ELEMENT[condition.precision.weights]
    )
    per_gpu = c.usable_memory_bytes - c.runtime_overhead_bytes
    return 1 if per_gpu <= 0 else max(1, math.ceil(weights / per_gpu))


def relax_gpus(search: RelaxSearch) -> Relaxation:
    c = search.condition.cluster
    if search.condition.mixed is not None:
        return Relaxation("gpus", {}, "not searched for mixed clusters: add nodes to a pool "
                          "(hardware.pools[i].num_nodes) and solve again")
    if not c.fixed:
        return _relax_max_gpus(search)
    per_node = c.gpus_per_node
    nodes = max(c.num_nodes + 1, -(-_min_gpus_for_weights(search.condition) // per_node))
    tried: list[int] = []
    while nodes * per_node <= MAX_GPUS and len(tried) < MAX_NODE_STEPS and not search.out_of_time():
        tried.append(nodes)
        plan = search.attempt({"hardware.num_nodes": nodes, "hardware.gpus_per_node": per_node})
        if plan is not None:
            nodes, plan = _fewer_nodes(search, tried, nodes, plan)
            return Relaxation(
                "gpus",
                {"hardware.num_nodes": nodes, "hardware.gpus_per_node": per_node},
                f"hardware.num_nodes: {c.num_nodes} -> {nodes} ({nodes * per_node} x "
                f"{c.gpu.name}, {per_node} per node)",
                plan_label(plan),
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


def _fewer_nodes(search: RelaxSearch, tried: list[int], nodes: int, plan: Plan) -> tuple[int, Plan]:
    """After a doubling step found a plan: bisect down towards the last count that had none (a
    count in between may fail on divisibility alone, so this finds a small count, not always the
    smallest)."""
    lo = tried[-2] if len(tried) > 1 else nodes
    while nodes - lo > 1 and not search.out_of_time():
        mid = (lo + nodes) // 2
        found = search.attempt({"hardware.num_nodes": mid,
                                "hardware.gpus_per_node": search.condition.cluster.gpus_per_node})
        lo, nodes, plan = (lo, mid, found) if found is not None else (mid, nodes, plan)
    return nodes, plan


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


def _relax_max_gpus(search: RelaxSearch) -> Relaxation:
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
                plan_label(final),
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


ADMIT_STEPS = 5  # a rounded value that does not solve is moved 1% at a time, at most this often


def _admitted(search: RelaxSearch, key: str, value: float, looser: float) -> tuple[float, Plan | None]:
    """The first of `value`, `value x looser`, `value x looser^2`, ... (3 significant digits) that
    solves, and its plan; (value, None) when none of ADMIT_STEPS does. A fix is reported only
    when its own value solves: the bisection's bounds come from float metrics, and the integer
    model rounds against the plan."""
    nice = _nice_up if looser > 1 else _nice_down
    for _ in range(ADMIT_STEPS):
        plan = search.attempt({key: value})
        if plan is not None or search.out_of_time():
            return value, plan
        value = nice(value * looser)
    return value, None


def _bisect(search: RelaxSearch, key: str, admits: float, refuses: float) -> tuple[float, Plan | None]:
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


def relax_slo(search: RelaxSearch, key: str) -> Relaxation:
    current = getattr(search.condition.slo, key)
    dotted = f"slo.{key}"
    loose = search.attempt({dotted: None})
    if loose is None:
        return Relaxation(
            "slo", {}, f"{dotted}: removing it alone does not help (another constraint binds)"
        )
    hi, _ = _bisect(search, dotted, getattr(loose.metrics, SLO_METRICS[key]), current)
    value, plan = _admitted(search, dotted, _nice_up(hi), 1.01)
    if plan is None:
        return Relaxation("slo", {}, f"{dotted}: no value near {value:g} ms was confirmed by a solve")
    return Relaxation(
        "slo", {dotted: value}, f"{dotted}: {current:g} -> {value:g} ms", plan_label(plan)
    )


def relax_rate(search: RelaxSearch) -> Relaxation:
    """The largest offered rate (3 significant digits, rounded down) the cluster serves under the
    other constraints: feasibility is monotone in the rate, so bisect between the capacity of the
    best plan without it and the rate asked for."""
    key, asked = "workload.request_rate", search.condition.workload.request_rate
    loose = search.attempt({key: None})
    if loose is None or asked is None or loose.serving is None:
        return Relaxation("rate", {}, f"{key}: removing it alone does not help (another constraint binds)")
    served, _ = _bisect(search, key, loose.serving.requests_per_s, asked)
    value, plan = _admitted(search, key, _nice_down(served), 0.99)
    if plan is None:
        return Relaxation("rate", {}, f"{key}: no rate near {value:g} requests/s was confirmed by a solve")
    return Relaxation("rate", {key: value}, f"{key}: {asked:g} -> {value:g} requests/s (the most it "
                      "serves under the other constraints)", plan_label(plan))


# ---- precision -----------------------------------------------------------------------------------


def relax_precision(search: RelaxSearch) -> Relaxation:
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
            return Relaxation("precision", change, before, plan_label(plan))
    tried = "; ".join(", ".join(f"{k.split('.')[1]} {v}" for k, v in c.items()) for c in options)
    return Relaxation(
        "precision", {}, f"no lower precision admits a plan (tried: {tried or 'none lower'})"
    )


# ---- batch ---------------------------------------------------------------------------------------


def relax_batch(search: RelaxSearch) -> Relaxation:
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
        plan_label(plan),
    )


def relax_policy(search: RelaxSearch) -> Relaxation | None:
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
        "policy", change, f"remove {', '.join(f'policy.{n}' for n in pinned)}", plan_label(plan)
    )


def relax_pools(search: RelaxSearch) -> Relaxation | None:
    """Disaggregated serving on whole nodes: let the two pools share a node."""
    spec = search.condition.serving
    if spec.mode not in ("disaggregated", "auto") or not spec.pool_spec.whole_nodes:
        return None
    key = "serving.pools.whole_nodes"
    plan = search.attempt({key: False})
    if plan is None:
        return Relaxation("pools", {}, f"{key}: false (pools sharing a node) does not help")
    return Relaxation("pools", {key: False}, f"{key}: true -> false (the pools may share a node)",
                      plan_label(plan))


def explain_infeasibility(
    condition: Condition,
    error: InfeasibleError,
    settings: SolverSettings | None = None,
) -> InfeasibilityReport:
    """Binding constraints of the failed solve, and the smallest relaxation of each kind.

    Bounded by MAX_RELAXATION_SOLVES solves and by `settings.deadline` (the run's --time-limit).
    """
    search = RelaxSearch(condition, settings or SolverSettings(), MAX_RELAXATION_SOLVES)
    report = InfeasibilityReport(condition.name, condition.source, str(error), list(error.binding),
                                 solve_limit=MAX_RELAXATION_SOLVES)
    # an SLO the failure names is tried first, then more GPUs and the other SLOs
    named = [k for k in SLO_METRICS if getattr(condition.slo, k) is not None
             and any(f"slo.{k}" in line for line in error.binding)]
    others = [k for k in SLO_METRICS if getattr(condition.slo, k) is not None and k not in named]
    pools_named = any("whole_nodes" in line for line in error.binding)  # tried first when named
    steps: list[Any] = [lambda: relax_pools(search)] if pools_named else []
    steps += [lambda k=k: relax_slo(search, k) for k in named]
    steps += [lambda: relax_gpus(search)]
    steps += [lambda k=k: relax_slo(search, k) for k in others]
    if condition.workload.request_rate is not None and condition.cluster.fixed:
        steps.append(lambda: relax_rate(search))
    steps += [
        lambda: relax_precision(search),
        lambda: relax_batch(search),
        lambda: relax_policy(search),
    ]
    if not pools_named:
        steps.append(lambda: relax_pools(search))
    for step in steps:
        if search.out_of_time():
            break
        result = step()
        if result is not None and (result.found or not search.out_of_time()):
            report.relaxations.append(result)  # a "no fix" cut short by the time limit is not one
    report.solves = search.solves
    report.budget_hit = search.budget_hit
    return report
