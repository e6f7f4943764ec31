"""Expert-to-GPU placement under skewed token load, with redundant expert slots.

Within one EP group of `ep` GPUs, each GPU has the same number of expert slots,
(num_experts + redundant_experts) / ep. Two stages:

1. Replica counts by water-filling (DeepSeek EPLB's rule): each extra slot goes to the expert
   with the largest load per replica; this minimizes the largest single replica load.
2. Packing of the replicas onto GPUs by CP-SAT: every replica on one GPU, every GPU exactly full,
   no two replicas of an expert on one GPU; minimize the largest GPU load. Identical GPUs are
   ordered by load (symmetry breaking); hinted with, and never worse than, the greedy EPLB packing
   (heaviest replica to the least-loaded GPU with a free slot).

A replicated expert's load is split evenly across its replicas. Loads are relative token shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ortools.sat.python import cp_model

from solver.interrupts import stop_on_sigint

LOAD_SCALE = 100_000  # integer load units for the total load of one layer (1e-5 resolution)


@dataclass(frozen=True)
class Placement:
    experts_by_gpu: list[list[int]]  # expert ids hosted by each EP rank
    replicas: list[int]  # replicas of each expert
    gpu_load: list[float]  # share of routed tokens per EP rank (sums to 1)
    method: str  # cp-sat | greedy | uniform
    optimal: bool
    greedy_max_over_mean: float  # what the greedy EPLB packing gives on the same slots
    bound_max_over_mean: float = 1.0  # proven lower bound on max/mean for these replica counts

    @property
    def max_over_mean(self) -> float:
        mean = sum(self.gpu_load) / len(self.gpu_load)
        return max(self.gpu_load) / mean if mean else 1.0


def normalized(loads: list[float]) -> list[float]:
    total = float(sum(loads))
    return [x / total for x in loads] if total > 0 else [1.0 / len(loads)] * len(loads)


def zipf_loads(num_experts: int, alpha: float) -> list[float]:
    """Expert i has rank i+1: load proportional to (i+1)^-alpha."""
    return normalized([(i + 1) ** -alpha for i in range(num_experts)])


def water_fill(loads: list[float], extra_slots: int, max_replicas: int) -> list[int]:
    replicas = [1] * len(loads)
    for _ in range(extra_slots):
        best = max(
            (i for i in range(len(loads)) if replicas[i] < max_replicas),
            key=lambda i: (loads[i] / replicas[i], -i),
            default=None,
        )
        if best is None:
            break
        replicas[best] += 1
    return replicas


def imbalance(experts_by_gpu: list[list[int]], loads: list[float]) -> float:
    """Max over mean routed-token share of a placement (1.0 = perfect balance).

    Pure function of the placement and the loads: used by the solver, the evaluator and the
    verifier alike.
    """
    share = normalized(loads)
    replicas = [0] * len(share)
    for hosted in experts_by_gpu:
        for e in hosted:
            replicas[e] += 1
    gpu = [sum(share[e] / replicas[e] for e in hosted) for hosted in experts_by_gpu]
    mean = sum(gpu) / len(gpu)
    return max(gpu) / mean if mean else 1.0


def _items(loads: list[float], replicas: list[int]) -> list[tuple[int, float]]:
    """(expert, load per replica) for every replica, heaviest first, ties by expert id."""
    items = [(e, loads[e] / r) for e, r in enumerate(replicas) for _ in range(r)]
    return sorted(items, key=lambda item: (-item[1], item[0]))


def greedy_pack(items: list[tuple[int, float]], ep: int, slots: int) -> list[list[int]]:
    gpus: list[list[int]] = [[] for _ in range(ep)]
    load = [0.0] * ep
    for expert, weight in items:
        options = [g for g in range(ep) if len(gpus[g]) < slots and expert not in gpus[g]]
        target = min(options, key=lambda g: (load[g], g))
        gpus[target].append(expert)
        load[target] += weight
    return gpus


def _gpu_loads(experts_by_gpu: list[list[int]], share: list[float], replicas: list[int]) -> list[float]:
    return [sum(share[e] / replicas[e] for e in hosted) for hosted in experts_by_gpu]


def _lower_bound(items: list[tuple[int, float]], weights: list[int], ep: int, slots: int) -> int:
    """Largest of: the average GPU, and each heavy replica plus the lightest (slots-1) others it
    must share a GPU with (replicas of the same expert excluded)."""
    bound = math.ceil(sum(weights) / ep)
    ascending = sorted(range(len(items)), key=lambda i: weights[i])
    for i in range(min(len(items), ep)):  # items are heaviest first; the rest cannot bind
        fill = [weights[j] for j in ascending if j != i and items[j][0] != items[i][0]][: slots - 1]
        bound = max(bound, weights[i] + sum(fill))
    return bound


def _cp_sat_pack(items: list[tuple[int, float]], ep: int, slots: int, hint: list[list[int]],
                 time_limit_s: float, workers: int) -> tuple[list[list[int]], bool, float] | None:
    model = cp_model.CpModel()
    weights = [max(1, round(w * LOAD_SCALE)) for _, w in items]
    on = [[model.new_bool_var(f"item{i}_gpu{g}") for g in range(ep)] for i in range(len(items))]
    for i in range(len(items)):
        model.add_exactly_one(on[i])
    for g in range(ep):
        model.add(sum(on[i][g] for i in range(len(items))) == slots)
    by_expert: dict[int, list[int]] = {}
    for i, (expert, _) in enumerate(items):
        by_expert.setdefault(expert, []).append(i)
    for copies in by_expert.values():
        if len(copies) > 1:
            for g in range(ep):
                model.add_at_most_one(on[i][g] for i in copies)
    total = sum(weights)
    load = [model.new_int_var(0, total, f"load{g}") for g in range(ep)]
    for g in range(ep):
        model.add(load[g] == sum(weights[i] * on[i][g] for i in range(len(items))))
    peak = model.new_int_var(_lower_bound(items, weights, ep, slots), total, "peak")
    for g in range(ep):
        model.add(load[g] <= peak)
    # identical GPUs: order them by load (any placement can be permuted into this order)
    for g in range(ep - 1):
        model.add(load[g] >= load[g + 1])
    model.minimize(peak)
    _add_hint(model, on, load, peak, items, hint, weights)
    solver = cp_model.CpSolver()
    solver.parameters.catch_sigint_signal = False  # Ctrl-C stays Python's (KeyboardInterrupt)
    stop_on_sigint(solver)
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    # optimal up to one load unit (1e-5 of the layer's routed tokens): proving the last unit is a
    # subset-sum question worth nothing to a deployment
    solver.parameters.absolute_gap_limit = 1.0
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    gpus: list[list[int]] = [[] for _ in range(ep)]
    for i, (expert, _) in enumerate(items):
        g = next(g for g in range(ep) if solver.boolean_value(on[i][g]))
        gpus[g].append(expert)
    return [sorted(h) for h in gpus], status == cp_model.OPTIMAL, solver.best_objective_bound


def _assignment_items(items: list[tuple[int, float]], gpus: list[list[int]], g: int) -> list[int]:
    """Indices of `items` placed on GPU g (replicas of one expert matched in order)."""
    remaining = [list(h) for h in gpus]
    chosen = []
    for i, (expert, _) in enumerate(items):
        owner = next(h for h in range(len(remaining)) if expert in remaining[h])
        remaining[owner].remove(expert)
        if owner == g:
            chosen.append(i)
    return chosen


def _add_hint(model: cp_model.CpModel, on: list[list[cp_model.IntVar]], load: list[cp_model.IntVar],
              peak: cp_model.IntVar, items: list[tuple[int, float]], hint: list[list[int]],
              weights: list[int]) -> None:
    """Hint the greedy packing, with GPUs reordered by load to satisfy the symmetry breaking."""
    remaining = [list(h) for h in hint]
    assignment: list[int] = []
    for expert, _ in items:
        g = next(g for g in range(len(remaining)) if expert in remaining[g])
        remaining[g].remove(expert)
        assignment.append(g)
    loads = [0] * len(hint)
    for i, g in enumerate(assignment):
        loads[g] += weights[i]
    order = sorted(range(len(hint)), key=lambda g: (-loads[g], g))
    rank = {g: r for r, g in enumerate(order)}
    for i, g in enumerate(assignment):
        for h in range(len(hint)):
            model.add_hint(on[i][h], rank[g] == h)
    for g in range(len(hint)):
        model.add_hint(load[rank[g]], loads[g])
    model.add_hint(peak, max(loads))


def place_experts(loads: list[float], ep: int, redundant_experts: int = 0,
                  time_limit_s: float = 10.0, workers: int = 2) -> Placement:
    """Optimal placement of `len(loads)` experts (+ redundant slots) on `ep` GPUs."""
    share = normalized(loads)
    num_experts = len(share)
    slots_total = num_experts + redundant_experts
    if slots_total % ep:
        raise ValueError(f"{slots_total} expert slots do not divide evenly over ep={ep} GPUs")
    slots = slots_total // ep
    replicas = water_fill(share, redundant_experts, max_replicas=ep)
    if sum(replicas) != slots_total:
        raise ValueError(f"{redundant_experts} redundant slots cannot be placed on ep={ep} GPUs "
                         "(an expert can have at most one replica per GPU)")
    items = _items(share, replicas)
    greedy = greedy_pack(items, ep, slots)
    greedy_ratio = imbalance(greedy, share)
    if ep == 1:
        return Placement([sorted(greedy[0])], replicas, [1.0], "uniform", True, 1.0)
    weights = [max(1, round(w * LOAD_SCALE)) for _, w in items]
    lower_bound = _lower_bound(items, weights, ep, slots)
    bound_ratio = lower_bound / (sum(weights) / ep)
    greedy_peak = max(sum(weights[i] for i in _assignment_items(items, greedy, g)) for g in range(ep))
    if greedy_peak <= lower_bound + 1:  # the greedy packing meets the bound (within 1 unit): optimal
        best = [sorted(h) for h in greedy]
        return Placement(best, replicas, _gpu_loads(best, share, replicas), "greedy", True,
                         greedy_ratio, min(bound_ratio, greedy_ratio))
    solved = _cp_sat_pack(items, ep, slots, greedy, time_limit_s, workers)
    if solved is None:
        best, method, optimal = [sorted(h) for h in greedy], "greedy", False
    else:
        best, optimal, proven_peak = solved
        bound_ratio = max(bound_ratio, proven_peak / (sum(weights) / ep))
        method = "cp-sat"
        if imbalance(best, share) > greedy_ratio:  # only within rounding of one load unit
            best, method = [sorted(h) for h in greedy], "greedy"
    placed = Placement(best, replicas, _gpu_loads(best, share, replicas), method, optimal,
                       greedy_ratio, 0.0)
    return Placement(placed.experts_by_gpu, replicas, placed.gpu_load, method, optimal, greedy_ratio,
                     min(bound_ratio, placed.max_over_mean))


@dataclass(frozen=True)
class ExpertPlacement:
    """Placement of one EP degree for every distinct per-layer load vector."""

    ep: int
    layers: list[Placement]  # one per MoE layer, or a single entry shared by all MoE layers
    per_layer: bool

    @property
    def slots_per_gpu(self) -> int:
        return len(self.layers[0].experts_by_gpu[0])

    @property
    def imbalance(self) -> float:
        """Mean over MoE layers of max/mean routed-token share (layer times add up)."""
        return sum(p.max_over_mean for p in self.layers) / len(self.layers)

    @property
    def greedy_imbalance(self) -> float:
        return sum(p.greedy_max_over_mean for p in self.layers) / len(self.layers)

    @property
    def optimal(self) -> bool:
        return all(p.optimal for p in self.layers)

    @property
    def bound_imbalance(self) -> float:
        return sum(p.bound_max_over_mean for p in self.layers) / len(self.layers)


def place_all(load_vectors: list[list[float]], ep: int, redundant_experts: int, per_layer: bool,
              time_limit_s: float = 10.0) -> ExpertPlacement:
    """Place every load vector (one per MoE layer, or one for all), sharing the time limit."""
    budget = max(0.2, time_limit_s / max(1, len(load_vectors)))
    layers = [place_experts(v, ep, redundant_experts, time_limit_s=budget) for v in load_vectors]
    return ExpertPlacement(ep=ep, layers=layers, per_layer=per_layer)


def imbalance_of_layers(experts_by_layer: list[list[list[int]]], loads_by_layer: list[list[float]]) -> float:
    """Mean over layers of max/mean routed-token share, recomputed from a placement (verifier)."""
    ratios = [imbalance(g, loads) for g, loads in zip(experts_by_layer, loads_by_layer, strict=True)]
    return sum(ratios) / len(ratios)
