"""One packing problem: replica counts for one EP degree and one load vector, packed onto GPUs.

1. Replica counts by water-filling (DeepSeek EPLB's rule): each extra slot goes to the expert
   with the largest load per replica; this minimizes the largest single replica load.
2. Packing of the replicas onto GPUs: the greedy EPLB packing (heaviest replica to the least-loaded
   GPU with a free slot), improved by a swap descent on the most loaded GPU (`swap_descent`), then,
   only where it can still matter, CP-SAT: every replica on one GPU, every GPU exactly full, no two
   replicas of an expert on one GPU; minimize the largest GPU load. Identical GPUs are ordered by
   load (symmetry breaking); hinted with, and never worse than, the packing at hand.

A packing that meets the lower bound (`_lower_bound`) within one load unit is proven optimal; the
swap descent reaches it in most cases in milliseconds. Every step is bounded by a work count or
CP-SAT's deterministic time, never wall time. A replicated expert's load is split evenly across its
replicas. Loads are relative token shares.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

import numpy as np

from solver.runtime.limits import Deadline, new_cp_solver, status_of

LOAD_SCALE = 100_000  # integer load units for the total load of one layer (1e-5 resolution)
# A packing search is worth its cost only when it can lower the most loaded GPU's share of routed
# tokens by at least this fraction: the imbalance multiplies only the routed-expert and all-to-all
# part of a layer, so a smaller gain moves TTFT/TPOT by less than 1%, an order of magnitude below
# the cost model's calibrated error (11.6-17% median, docs/accuracy.md).
PLACEMENT_RESOLUTION = 0.01
# replicas x GPUs above which CP-SAT is not tried: measured, it never improved on its hint at 288 x 72
# (20,736 booleans, 5 s) nor at 288 x 36; it settles 256 x 8 and 256 x 32 within a second
PLACEMENT_MAX_BOOLEANS = 10_000
# (replica, replica) pairs a swap descent may examine (numpy, ~20M per second): per packing, and
# for all packings of one problem; beyond them the greedy packing stays
SWAP_DESCENT_CELLS = 2_000_000


@dataclass(frozen=True)
class Placement:
    experts_by_gpu: list[list[int]]  # expert ids hosted by each EP rank
    replicas: list[int]  # replicas of each expert
    gpu_load: list[float]  # share of routed tokens per EP rank (sums to 1)
    method: str  # uniform | greedy | swaps (greedy + swap descent) | cp-sat
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


def water_fill(loads: list[float], extra_slots: int, max_replicas: int) -> list[int]:
    """Each extra slot to the expert with the largest load per replica (ties: lowest id), at most
    `max_replicas` replicas per expert."""
    replicas = [1] * len(loads)
    heap = [(-load, e) for e, load in enumerate(loads)] if max_replicas > 1 else []
    heapq.heapify(heap)
    for _ in range(extra_slots):
        if not heap:
            break
        _, best = heapq.heappop(heap)
        replicas[best] += 1
        if replicas[best] < max_replicas:
            heapq.heappush(heap, (-(loads[best] / replicas[best]), best))
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


def _share_ratio(items: list[tuple[int, float]], assignment: list[int], ep: int) -> float:
    """Max over mean GPU share of an assignment, from the exact (unrounded) replica loads."""
    loads = [0.0] * ep
    for (_, share), gpu in zip(items, assignment, strict=True):
        loads[gpu] += share
    return max(loads) / (sum(loads) / ep)


def replica_items(loads: list[float], replicas: list[int]) -> list[tuple[int, float]]:
    """(expert, load per replica) for every replica, heaviest first, ties by expert id."""
    items = [(e, loads[e] / r) for e, r in enumerate(replicas) for _ in range(r)]
    return sorted(items, key=lambda item: (-item[1], item[0]))


def greedy_assign(items: list[tuple[int, float]], ep: int, slots: int) -> list[int]:
    """EPLB greedy: each replica, heaviest first, to the least-loaded GPU (ties: lowest index) that
    has a free slot and no replica of the same expert. Returns the GPU of every item."""
    heap = [(0.0, g) for g in range(ep)]  # GPUs with a free slot, by (load, index)
    count = [0] * ep
    hosts: dict[int, set[int]] = {}
    assignment = []
    for expert, weight in items:
        taken = hosts.setdefault(expert, set())
        skipped = []
        load, g = heapq.heappop(heap)
        while g in taken:
            skipped.append((load, g))
            load, g = heapq.heappop(heap)
        for entry in skipped:
            heapq.heappush(heap, entry)
        taken.add(g)
        assignment.append(g)
        count[g] += 1
        if count[g] < slots:
            heapq.heappush(heap, (load + weight, g))
    return assignment


def greedy_pack(items: list[tuple[int, float]], ep: int, slots: int) -> list[list[int]]:
    """The greedy EPLB packing as expert ids per GPU (in the order they were placed)."""
    gpus: list[list[int]] = [[] for _ in range(ep)]
    for (expert, _), g in zip(items, greedy_assign(items, ep, slots), strict=True):
        gpus[g].append(expert)
    return gpus


def _gpu_loads(experts_by_gpu: list[list[int]], share: list[float], replicas: list[int]) -> list[float]:
    return [sum(share[e] / replicas[e] for e in hosted) for hosted in experts_by_gpu]


def _lower_bound(items: list[tuple[int, float]], weights: list[int], ep: int, slots: int) -> int:
    """Largest of: the average GPU, and each heavy replica plus the lightest (slots-1) others it
    must share a GPU with (replicas of the same expert excluded)."""
    bound = math.ceil(sum(weights) / ep)
    ascending = sorted(range(len(items)), key=lambda i: weights[i])
    for i in range(min(len(items), ep)):  # items are heaviest first; the rest cannot bind
        others = (weights[j] for j in ascending if j != i and items[j][0] != items[i][0])
        bound = max(bound, weights[i] + sum(itertools.islice(others, slots - 1)))
    return bound


def swap_descent(experts: list[int], weights: list[int], assignment: list[int], ep: int,
                 max_cells: int = SWAP_DESCENT_CELLS) -> tuple[list[int], int, int]:
    """Lower the most loaded GPU by swapping one of its replicas with a lighter replica elsewhere.

    Each move takes the swap that leaves the lower maximum of the two GPUs involved (ties: first
    in item order), never creates a new peak and never puts two replicas of an expert on one GPU,
    so (peak, GPUs at the peak) falls with every move. Stops when no swap helps or before a move
    would take the (replica, replica) pairs examined past `max_cells`: a work count, so the result
    does not depend on the machine. Returns the assignment, the number of moves and the cells examined.
    """
    a = np.array(assignment, dtype=np.int64)
    w = np.array(weights, dtype=np.int64)
    e = np.array(experts, dtype=np.int64)
    load = np.zeros(ep, dtype=np.int64)
    np.add.at(load, a, w)
    hosts = [set() for _ in range(ep)]
    for expert, g in zip(experts, assignment, strict=True):
        hosts[g].add(expert)
    never = np.iinfo(np.int64).max
    moves = cells = 0
    while True:
        g = int(np.argmax(load))
        peak = load[g]
        mine, other = np.flatnonzero(a == g), np.flatnonzero(a != g)
        if cells + len(mine) * len(other) > max_cells:
            break
        cells += len(mine) * len(other)
        gain = w[mine][:, None] - w[other][None, :]
        raised = load[a[other]][None, :] + gain
        ok = (gain > 0) & (raised < peak) & ~np.isin(e[other], list(hosts[g]))[None, :]
        score = np.where(ok, np.maximum(peak - gain, raised), never)
        while True:
            flat = int(np.argmin(score))
            i, j = divmod(flat, len(other))
            if score[i, j] == never:
                return a.tolist(), moves, cells
            item, swapped = int(mine[i]), int(other[j])
            h = int(a[swapped])
            if experts[item] not in hosts[h]:
                break
            score[i, j] = never
        hosts[g].remove(experts[item])
        hosts[h].remove(experts[swapped])
        hosts[g].add(experts[swapped])
        hosts[h].add(experts[item])
        a[item], a[swapped] = h, g
        load[g] -= gain[i, j]
        load[h] += gain[i, j]
        moves += 1
    return a.tolist(), moves, cells


@dataclass
class PackingProblem:
    """One load vector on one EP degree: replica counts, the greedy packing improved by swaps, and
    the lower bound that proves a packing optimal."""

    share: list[float]
    ep: int
    slots: int
    replicas: list[int]
    items: list[tuple[int, float]]
    weights: list[int]  # integer load per item, LOAD_SCALE per layer
    greedy: list[int]  # GPU of every item, greedy EPLB packing
    greedy_peak: int
    lower_bound: int
    assignment: list[int]  # best packing found: the greedy, or the greedy after swap_descent
    peak: int
    method: str  # uniform | greedy | swaps
    descent_cells: int = 0  # work of the swap descent

    @classmethod
    def of(cls, loads: list[float], ep: int, redundant_experts: int,
           descent_cells: int = SWAP_DESCENT_CELLS) -> PackingProblem:
        """Replica counts, greedy packing and bound; a swap descent of at most `descent_cells`."""
        share = normalized(loads)
        slots_total = len(share) + redundant_experts
        if slots_total % ep:
            raise ValueError(f"{slots_total} expert slots do not divide evenly over ep={ep} GPUs")
        replicas = water_fill(share, redundant_experts, max_replicas=ep)
        if sum(replicas) != slots_total:
            raise ValueError(f"{redundant_experts} redundant slots cannot be placed on ep={ep} GPUs "
                             "(an expert can have at most one replica per GPU)")
        slots = slots_total // ep
        items = replica_items(share, replicas)
        weights = [max(1, round(w * LOAD_SCALE)) for _, w in items]
        greedy = greedy_assign(items, ep, slots)
        greedy_peak = _peak(greedy, weights, ep)
        bound = _lower_bound(items, weights, ep, slots)
        assignment, peak, method = greedy, greedy_peak, "uniform" if ep == 1 else "greedy"
        cells = 0
        if ep > 1 and greedy_peak > bound + 1 and descent_cells > 0:
            improved, moves, cells = swap_descent([x for x, _ in items], weights, greedy, ep,
                                                  descent_cells)
            # the swaps work on loads rounded to 1 / LOAD_SCALE of a layer: keep them only when the
            # exact shares agree that they are better
            if moves and _share_ratio(items, improved, ep) < _share_ratio(items, greedy, ep):
                assignment, peak, method = improved, _peak(improved, weights, ep), "swaps"
        return cls(share, ep, slots, replicas, items, weights, greedy, greedy_peak, bound,
                   assignment, peak, method, cells)

    @property
    def optimal(self) -> bool:
        """The packing meets the lower bound within one load unit."""
        return self.ep == 1 or self.peak <= self.lower_bound + 1

    @property
    def possible_gain(self) -> float:
        """The most a search could lower the peak GPU load, relative to the current peak."""
        return (self.peak - self.lower_bound) / self.peak

    @property
    def worth_searching(self) -> bool:
        return not self.optimal and self.possible_gain >= PLACEMENT_RESOLUTION

    @property
    def booleans(self) -> int:
        return len(self.items) * self.ep

    def _gpus(self, assignment: list[int]) -> list[list[int]]:
        gpus: list[list[int]] = [[] for _ in range(self.ep)]
        for (expert, _), g in zip(self.items, assignment, strict=True):
            gpus[g].append(expert)
        return [sorted(h) for h in gpus]

    def _ratio(self, peak_units: float) -> float:
        return peak_units / (sum(self.weights) / self.ep)

    def placement(self) -> Placement:
        """The best packing found without a search."""
        gpus = self._gpus(self.assignment)
        greedy_ratio = imbalance(self._gpus(self.greedy), self.share)
        if self.ep == 1:
            return Placement(gpus, self.replicas, [1.0], "uniform", True, 1.0)
        loads = _gpu_loads(gpus, self.share, self.replicas)
        ratio = imbalance(gpus, self.share)
        return Placement(gpus, self.replicas, loads, self.method, self.optimal, greedy_ratio,
                         min(self._ratio(self.lower_bound), ratio))

    def search(self, work_limit: float, deadline: Deadline | None) -> tuple[Placement, float]:
        """CP-SAT packing within `work_limit` (deterministic time), hinted with and never worse
        than the packing at hand. Returns the placement and the work used."""
        current = self.placement()
        solved, work = _cp_sat_pack(self, work_limit, deadline)
        if solved is None:
            return current, work
        assignment, optimal, proven_peak = solved
        gpus = self._gpus(assignment)
        bound = min(max(self._ratio(self.lower_bound), self._ratio(proven_peak)), current.max_over_mean)
        if imbalance(gpus, self.share) >= current.max_over_mean:  # no better (within a load unit)
            return Placement(current.experts_by_gpu, self.replicas, current.gpu_load, current.method,
                             optimal or current.optimal, current.greedy_max_over_mean, bound), work
        loads = _gpu_loads(gpus, self.share, self.replicas)
        placed = Placement(gpus, self.replicas, loads, "cp-sat", optimal, current.greedy_max_over_mean)
        return Placement(gpus, self.replicas, loads, "cp-sat", optimal, current.greedy_max_over_mean,
                         min(bound, placed.max_over_mean)), work


def _peak(assignment: list[int], weights: list[int], ep: int) -> int:
    load = [0] * ep
    for g, w in zip(assignment, weights, strict=True):
        load[g] += w
    return max(load)


def _cp_sat_pack(p: PackingProblem, work_limit: float,
                 deadline: Deadline | None) -> tuple[tuple[list[int], bool, float] | None, float]:
    """(GPU of every item, proven optimal, proven peak bound) or None, and the work used."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    items, weights, ep, slots = p.items, p.weights, p.ep, p.slots
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
    peak = model.new_int_var(p.lower_bound, total, "peak")
    for g in range(ep):
        model.add(load[g] <= peak)
    # identical GPUs: order them by load (any placement can be permuted into this order)
    for g in range(ep - 1):
        model.add(load[g] >= load[g + 1])
    model.minimize(peak)
    _add_hint(model, on, load, peak, p)
    solver = new_cp_solver(work_limit, deadline, workers=1, seed=0)
    # optimal up to one load unit (1e-5 of the layer's routed tokens): proving the last unit is a
    # subset-sum question worth nothing to a deployment
    solver.parameters.absolute_gap_limit = 1.0
    status = status_of(solver, solver.solve(model), model)
    work = solver.deterministic_time
    if status not in ("optimal", "feasible"):
        return None, work
    assignment = [next(g for g in range(ep) if solver.boolean_value(on[i][g])) for i in range(len(items))]
    return (assignment, status == "optimal", solver.best_objective_bound), work


def _add_hint(model: object, on: list[list[object]], load: list[object], peak: object,
              p: PackingProblem) -> None:
    """Hint the packing at hand, with GPUs reordered by load to satisfy the symmetry breaking."""
    loads = [0] * p.ep
    for g, w in zip(p.assignment, p.weights, strict=True):
        loads[g] += w
    order = sorted(range(p.ep), key=lambda g: (-loads[g], g))
    rank = {g: r for r, g in enumerate(order)}
    for i, g in enumerate(p.assignment):
        for h in range(p.ep):
            model.add_hint(on[i][h], rank[g] == h)  # type: ignore[attr-defined]
    for g in range(p.ep):
        model.add_hint(load[rank[g]], loads[g])  # type: ignore[attr-defined]
    model.add_hint(peak, max(loads))  # type: ignore[attr-defined]
