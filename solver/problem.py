"""The planning instance: every candidate (shape, batch) with its cost tables, nothing left to derive.

Shared by the CP-SAT formulation and the exhaustive oracle so both optimize the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from solver.architecture import Architecture, LayerKind
from solver.condition import Condition
from solver.cost import CostModel
from solver.evaluate import Normalizers
from solver.shapes import ParallelShape, enumerate_shapes
from solver.tables import CandidateTable, build_table

log = logging.getLogger(__name__)


def batch_grid(condition: Condition) -> list[int]:
    """Batch sizes the planner may choose: 1, 2, 3, 4, 6, 8, 12, ... (x2 and x1.5 steps) and the max.

    A fixed workload.batch_size gives that single value.
    """
    w = condition.workload
    if w.batch_size is not None:
        return [w.batch_size]
    limit = int(w.max_batch_size or 1)
    grid = {limit}
    power = 1
    while power <= limit:
        grid.add(power)
        if power * 3 // 2 <= limit and power >= 2:
            grid.add(power * 3 // 2)
        power *= 2
    return sorted(grid)


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

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    def counts(self, first: int, end: int) -> list[int]:
        """Layers of each kind in [first, end), in the order of `kinds`."""
        return [self.prefix_counts[k][end] - self.prefix_counts[k][first] for k in self.kinds]


def build_problem(condition: Condition) -> PlanningProblem:
    model = CostModel(condition)
    arch: Architecture = model.arch
    normalizers = Normalizers.of(condition, model)
    shapes = enumerate_shapes(condition)
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
    return PlanningProblem(condition, model, normalizers, layer_kinds, kinds, shapes, tables, prefix)
