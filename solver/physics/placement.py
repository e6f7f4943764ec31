"""Expert-to-GPU placement under skewed token load, with redundant expert slots.

Within one EP group of `ep` GPUs, each GPU has the same number of expert slots,
(num_experts + redundant_experts) / ep. Each (EP degree, load vector) is one packing problem
(physics/packing.py: water-filling replica counts, then greedy packing, swap descent and, where
it can still matter, CP-SAT). The searches of one planning problem share one deterministic budget
(`PLACEMENT_WORK`), smallest models first, and a search is skipped when the most it could gain is
below `PLACEMENT_RESOLUTION` (docs/design.md, "Expert placement").
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.physics.packing import (
    PLACEMENT_MAX_BOOLEANS,
    SWAP_DESCENT_CELLS,
    PackingProblem,
    Placement,
    imbalance,
    normalized,
)
from solver.runtime.limits import Deadline

PLACEMENT_WORK = 8.0  # CP-SAT deterministic time for all packing searches of one problem
PLACEMENT_SOLVE_WORK = 2.0  # at most this much for one packing search
PLACEMENT_MIN_SOLVE_WORK = 0.05  # below this a search cannot even load the hint: stop
PLACEMENT_DESCENT_CELLS = 40_000_000  # swap-descent pairs for all packings of one problem


def zipf_loads(num_experts: int, alpha: float) -> list[float]:
    """Expert i has rank i+1: load proportional to (i+1)^-alpha."""
    return normalized([(i + 1) ** -alpha for i in range(num_experts)])


def place_experts(loads: list[float], ep: int, redundant_experts: int = 0,
                  work_limit: float = PLACEMENT_SOLVE_WORK, deadline: Deadline | None = None) -> Placement:
    """Placement of `len(loads)` experts (+ redundant slots) on `ep` GPUs: the greedy when it is
    optimal or a search could not gain `PLACEMENT_RESOLUTION`, else the best packing CP-SAT finds
    within `work_limit` (deterministic time)."""
    problem = PackingProblem.of(loads, ep, redundant_experts)
    if not problem.worth_searching or problem.booleans > PLACEMENT_MAX_BOOLEANS:
        return problem.placement()
    return problem.search(work_limit, deadline)[0]


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


@dataclass
class PlacementWork:
    """What the packing searches of one problem did (deterministic unless the deadline hit)."""

    searches: int = 0
    improved: int = 0
    work: float = 0.0  # CP-SAT deterministic time
    descent_cells: int = 0
    skipped_for_budget: int = 0
    skipped_for_size: int = 0
    deadline_hit: bool = False


def place_all_degrees(load_vectors: list[list[float]], eps: list[int], redundant_experts: int,
                      per_layer: bool, deadline: Deadline | None = None,
                      budget: float = PLACEMENT_WORK) -> tuple[dict[int, ExpertPlacement], PlacementWork]:
    """Placements of every load vector on every EP degree, all searches within one budget.

    Greedy first everywhere; then the packings a search could improve by at least
    PLACEMENT_RESOLUTION, smallest model first (they are the ones CP-SAT settles), each with at most
    PLACEMENT_SOLVE_WORK of what remains. Identical load vectors are placed once.
    """
    distinct: dict[tuple[float, ...], int] = {}
    layer_of = [distinct.setdefault(tuple(v), len(distinct)) for v in load_vectors]
    vectors = [list(v) for v in distinct]
    report = PlacementWork()
    problems: dict[tuple[int, int], PackingProblem] = {}
    for ep in eps:
        for i, v in enumerate(vectors):
            cells = min(SWAP_DESCENT_CELLS, PLACEMENT_DESCENT_CELLS - report.descent_cells)
            if deadline is not None and deadline.check("expert placement"):
                report.deadline_hit, cells = True, 0
            problems[(ep, i)] = p = PackingProblem.of(v, ep, redundant_experts, cells)
            report.descent_cells += p.descent_cells
    chosen = {key: p.placement() for key, p in problems.items()}
    queue = sorted((key for key, p in problems.items() if p.worth_searching),
                   key=lambda key: (problems[key].booleans, -problems[key].possible_gain, key))
    for key in queue:
        p = problems[key]
        remaining = budget - report.work
        if p.booleans > PLACEMENT_MAX_BOOLEANS:
            report.skipped_for_size += 1
        elif remaining < PLACEMENT_MIN_SOLVE_WORK:
            report.skipped_for_budget += 1
        elif deadline is not None and deadline.check("expert placement"):
            report.deadline_hit = True
            report.skipped_for_budget += 1
        else:
            placed, used = p.search(min(PLACEMENT_SOLVE_WORK, remaining), deadline)
            report.searches += 1
            report.work += used
            report.improved += placed.method == "cp-sat"
            chosen[key] = placed
    out = {ep: ExpertPlacement(ep, [chosen[(ep, i)] for i in layer_of], per_layer) for ep in eps}
    return out, report


def imbalance_of_layers(experts_by_layer: list[list[list[int]]], loads_by_layer: list[list[float]]) -> float:
    """Mean over layers of max/mean routed-token share, recomputed from a placement (verifier)."""
    ratios = [imbalance(g, loads) for g, loads in zip(experts_by_layer, loads_by_layer, strict=True)]
    return sum(ratios) / len(ratios)
