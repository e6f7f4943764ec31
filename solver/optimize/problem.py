"""The planning instance: every candidate (shape, batch) with its cost tables, nothing left to derive.

Shared by the CP-SAT formulation and the exhaustive oracle so both optimize the same thing.
Candidates are enumerated up front (index order: shapes in enumeration order, then batches); a
candidate's CandidateTable is built when first asked for, so screening, which works on the
vectorized TableGrid of all candidates, builds full tables only for the few it cannot settle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from solver.inputs.condition import DEGREE_NAMES, Condition
from solver.optimize.tables import CandidateTable, TableGrid, build_table, table_grid

if TYPE_CHECKING:
    from solver.optimize.bounds import Bounds
from solver.physics.architecture import Architecture, LayerKind, LayerPattern
from solver.physics.continuous import (
    CHUNK_TOKENS_GRID,
    CONTINUOUS,
    UTILIZATION_GRID,
    ContinuousLoad,
    steady_state,
)
from solver.physics.cost import CostModel, ExpertLayout
from solver.physics.evaluate import Normalizers
from solver.physics.placement import PLACEMENT_WORK, ExpertPlacement, PlacementWork, place_all_degrees
from solver.physics.points import Load
from solver.physics.serving import StaticLoad
from solver.physics.shapes import ParallelShape, ShapeGrid, enumerate_shapes, geometric_grid
from solver.physics.speculative import tokens_per_step, verified_positions
from solver.runtime.limits import Deadline

log = logging.getLogger(__name__)


def batch_grid(condition: Condition) -> list[int]:
    """Batch sizes the planner may choose: 1, 2, 3, 4, 6, 8, 12, ... (x2 and x1.5 steps) up to the max.

    A fixed workload.batch_size gives that single value.
    """
    w = condition.workload
    if w.batch_size is not None:
        return [w.batch_size]
    return geometric_grid(int(w.max_batch_size or 1))


def chunk_grid(condition: Condition) -> list[int]:
    """max-num-batched-tokens values the planner may choose (continuous serving)."""
    chunk = condition.serving.chunk_tokens
    if chunk is None:
        return list(CHUNK_TOKENS_GRID)
    return sorted(set(chunk)) if isinstance(chunk, list) else [chunk]


def utilization_grid(condition: Condition) -> list[float]:
    return sorted(set(condition.serving.utilization or UTILIZATION_GRID))


@dataclass(frozen=True)
class Candidates:
    """Every candidate, by index: shape_index[i] into `shapes` and its load. A static batch has
    batch[i] sequences; continuous batching has batch[i] slots (max-num-seqs), chunk[i] tokens per
    step (max-num-batched-tokens) and utilization[i] (mean active / slots); chunk and utilization
    are None for static batching."""

    shapes: list[ParallelShape]
    shape_index: np.ndarray
    batch: np.ndarray
    chunk: np.ndarray | None = None
    utilization: np.ndarray | None = None

    @classmethod
    def of(cls, shapes: list[ParallelShape], batches: list[int]) -> Candidates:
        """Static batching: shapes x batches."""
        pairs = [(i, b) for i, shape in enumerate(shapes) for b in batches
                 if b >= shape.attn_dp]  # an attention-DP group needs a sequence
        index = np.array([i for i, _ in pairs], dtype=np.int64)
        return cls(shapes, index, np.array([b for _, b in pairs], dtype=np.int64))

    @classmethod
    def continuous(cls, shapes: list[ParallelShape], condition: Condition) -> Candidates:
        """Continuous batching: shapes x slots x chunk budgets x utilizations, where a steady
        state exists (the budget feeds the active sequences)."""
        w = condition.workload
        rows = [(i, b, t, u) for i, shape in enumerate(shapes) for b in batch_grid(condition)
                if b >= shape.attn_dp for t in chunk_grid(condition) for u in utilization_grid(condition)]
        index, slots, chunk, util = (np.array(col) for col in zip(*rows, strict=True)) if rows else (
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
        pp = np.array([shapes[i].pp for i in index.tolist()], dtype=np.int64)
        state = steady_state(ContinuousLoad(slots, util, chunk), pp, w.input_tokens, w.output_tokens,
                             tokens_per_step(condition), verified_positions(condition))
        keep = np.asarray(state.feasible, dtype=bool)
        return cls(shapes, index[keep].astype(np.int64), slots[keep].astype(np.int64),
                   chunk[keep].astype(np.int64), util[keep].astype(float))

    def __len__(self) -> int:
        return len(self.batch)

    def shape(self, index: int) -> ParallelShape:
        return self.shapes[int(self.shape_index[index])]

    def load(self, index: int) -> Load:
        if self.chunk is None or self.utilization is None:
            return StaticLoad(int(self.batch[index]))
        return ContinuousLoad(int(self.batch[index]), float(self.utilization[index]),
                              int(self.chunk[index]))

    def grid_load(self) -> Load:
        """Every candidate's load as arrays."""
        if self.chunk is None or self.utilization is None:
            return StaticLoad(self.batch)
        return ContinuousLoad(self.batch, self.utilization, self.chunk)

    def grid(self) -> ShapeGrid:
        """Every candidate's shape as arrays of degrees."""
        per_shape = ShapeGrid.of(self.shapes)
        return ShapeGrid(*(getattr(per_shape, n)[self.shape_index] for n in DEGREE_NAMES))


@dataclass
class PlanningProblem:
    condition: Condition
    cost_model: CostModel
    normalizers: Normalizers
    layer_kinds: tuple[LayerKind, ...]
    kinds: tuple[LayerKind, ...]
    shapes: list[ParallelShape]
    candidates: Candidates
    prefix_counts: dict[LayerKind, list[int]] = field(default_factory=dict)
    placements: dict[int, ExpertPlacement] = field(default_factory=dict)  # by ep degree
    bounds_cache: dict[int, Bounds] = field(default_factory=dict)  # screening.bounds_of, by table
    placement_work: PlacementWork = field(default_factory=PlacementWork)
    screen_cache: dict[str, object] = field(default_factory=dict)  # formulation's grid screening
    _tables: dict[int, CandidateTable] = field(default_factory=dict)
    _grid: TableGrid | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    @property
    def pattern(self) -> LayerPattern:
        return self.cost_model.arch.layer_pattern

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    def table(self, index: int) -> CandidateTable:
        """The full integer table of candidate `index`, built on first use."""
        table = self._tables.get(index)
        if table is None:
            costs = self.cost_model.candidate(self.candidates.shape(index), self.candidates.load(index))
            table = self._tables[index] = build_table(index, self.condition, costs, self.normalizers)
        return table

    @property
    def tables(self) -> list[CandidateTable]:
        """Every candidate's table, in index order (builds them all: the oracle, the core)."""
        return [self.table(i) for i in range(self.num_candidates)]

    @property
    def tables_built(self) -> int:
        return len(self._tables)

    def table_grid(self) -> TableGrid:
        """Every candidate's integers at once (numpy), for screening."""
        if self._grid is None:
            costs = self.cost_model.candidate_grid(self.candidates.grid(), self.candidates.grid_load())
            self._grid = table_grid(self.condition, costs, self.normalizers)
        return self._grid

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
    if condition.serving.mode == CONTINUOUS:
        candidates = Candidates.continuous(shapes, condition)
    else:
        candidates = Candidates.of(shapes, batch_grid(condition))
    layer_kinds = arch.layer_kinds
    kinds = arch.distinct_kinds
    prefix: dict[LayerKind, list[int]] = {}
    for kind in kinds:
        running = [0]
        for layer_kind in layer_kinds:
            running.append(running[-1] + (layer_kind == kind))
        prefix[kind] = running
    log.info("%d shapes, %d candidates (shape x batch)", len(shapes), len(candidates))
    return PlanningProblem(condition, model, normalizers, layer_kinds, kinds, shapes, candidates, prefix,
                           placements, placement_work=work)
