"""The planning instance: every candidate (shape, batch) with its cost tables, nothing left to derive.

Shared by the CP-SAT formulation and the exhaustive oracle so both optimize the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from solver.architecture import Architecture, LayerKind
from solver.condition import Condition
from solver.cost import CostModel, ExpertLayout
from solver.evaluate import Normalizers
from solver.limits import Deadline
from solver.placement import PLACEMENT_WORK, ExpertPlacement, PlacementWork, place_all_degrees
from solver.shapes import ParallelShape, _geometric_grid, enumerate_shapes
from solver.tables import CandidateTable, build_table

log = logging.getLogger(__name__)


def batch_grid(condition: Condition) -> list[int]:
    """Batch sizes the planner may choose: 1, 2, 3, 4, 6, 8, 12, ... (x2 and x1.5 steps) up to the max.

    A fixed workload.batch_size gives that single value.
    """
    w = condition.workload
    if w.batch_size is not None:
        return [w.batch_size]
    return _geometric_grid(int(w.max_batch_size or 1))


@dataclass
class PlanningProblem:
    condition: Condition
    cost_model: CostModel
    normalizers: Normalizers
    layer_kinds: tuple[LayerKind, ...]
    kinds: tuple[LayerKind, ...]
    shapes: list[ParallelShape]
    tables: list[CandidateTable]
    prefix_counts: dict[LayerKind, list[int]] = field(default_factory=dict)
    placements: dict[int, ExpertPlacement] = field(default_factory=dict)  # by ep degree
    bounds_cache: dict[int, object] = field(default_factory=dict)  # formulation._bounds by table
    placement_work: PlacementWork = field(default_factory=PlacementWork)

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    def counts(self, first: int, end: int) -> list[int]:
        """Layers of each kind in [first, end), in the order of `kinds`."""
        return [self.prefix_counts[k][end] - self.prefix_counts[k][first] for k in self.kinds]


def expert_placements(condition: Condition, eps: set[int], deadline: Deadline | None = None,
                      work: float = PLACEMENT_WORK) -> tuple[dict[int, ExpertPlacement], PlacementWork]:
    """Expert placement for every EP degree in use (only when loads are skewed or redundant slots
    are given; otherwise the uniform contiguous spread is exact). All packing searches share one
    deterministic budget, `work` (CP-SAT deterministic time)."""
    vectors = condition.expert_load_vectors()
    if vectors is None:
        return {}, PlacementWork()
    return place_all_degrees(vectors, sorted(eps), condition.policy.redundant_experts,
                             condition.expert_loads_per_layer, deadline, work)


def layouts_of(placements: dict[int, ExpertPlacement]) -> dict[int, ExpertLayout]:
    return {ep: ExpertLayout(p.slots_per_gpu, p.imbalance) for ep, p in placements.items()}


def build_problem(condition: Condition, deadline: Deadline | None = None,
                  placement_work: float = PLACEMENT_WORK) -> PlanningProblem:
    shapes = enumerate_shapes(condition)
    placements, work = expert_placements(condition, {s.ep for s in shapes}, deadline, placement_work)
    model = CostModel(condition, layouts_of(placements))
    arch: Architecture = model.arch
    normalizers = Normalizers.of(condition, model)
    tables: list[CandidateTable] = []
    for shape in shapes:
        for batch in batch_grid(condition):
            if batch < shape.attn_dp:
                continue  # an attention-DP group would have no sequence
            costs = model.candidate(shape, batch)
            tables.append(build_table(len(tables), condition, costs, normalizers))
    layer_kinds = arch.layer_kinds
    kinds = arch.distinct_kinds
    prefix: dict[LayerKind, list[int]] = {}
    for kind in kinds:
        running = [0]
        for layer_kind in layer_kinds:
            running.append(running[-1] + (layer_kind == kind))
        prefix[kind] = running
    log.info("%d shapes, %d candidates (shape x batch)", len(shapes), len(tables))
    return PlanningProblem(condition, model, normalizers, layer_kinds, kinds, shapes, tables, prefix,
                           placements, placement_work=work)
