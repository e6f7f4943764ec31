"""Every operating point of one pool at once: the cost model's grid over a pool's candidates.

`PoolEvaluator.evaluate` (optimize/pools.py) prices one instance at a time: its stage times at
the balanced split, the KV capacity of every stage and the serving metrics. `pool_grid` runs the
same formulas on numpy arrays (`CostModel.candidate_grid`, one value per candidate; the stage sums
and maxima and the metric forms of physics/serving.py written out on arrays) for every candidate
of one pipeline depth at once. The grid numbers agree with the one-by-one ones to rounding (numpy's
power and logarithm, the order of a few sums); `GRID_RTOL` is the relative distance screening
allows for, far above what is measured (about 1e-15; tests/optimize/test_pool_search.py), and
every candidate evaluated one by one afterwards is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.optimize.screening import balanced_boundaries
from solver.physics.architecture import LayerKind
from solver.physics.continuous import ContinuousLoad, DecodeLoad
from solver.physics.cost import CandidateCosts, CostModel, LayerCost
from solver.physics.evaluate import kind_counts
from solver.physics.numeric import Num
from solver.physics.serving import MAX, SUM, LinearForm
from solver.physics.shapes import ParallelShape, ShapeGrid

GRID_RTOL = 1e-9  # |grid - one by one| <= GRID_RTOL * |grid| for every number screening uses


@dataclass(frozen=True)
class PoolRows:
    """Operating points of one pool (one entry per candidate): the shape, max-num-seqs, the
    utilization and, for prefill, max-num-batched-tokens (None: a decode instance)."""

    shape: list[ParallelShape]
    slots: np.ndarray
    utilization: np.ndarray
    chunk_tokens: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.shape)

    def load(self, i: int) -> ContinuousLoad | DecodeLoad:
        """Candidate i's load, as the one-by-one evaluation takes it."""
        if self.chunk_tokens is None:
            return DecodeLoad(int(self.slots[i]), float(self.utilization[i]))
        return ContinuousLoad(int(self.slots[i]), float(self.utilization[i]), int(self.chunk_tokens[i]))

    def grid_load(self, rows: np.ndarray) -> ContinuousLoad | DecodeLoad:
        slots, util = self.slots[rows], self.utilization[rows]
        if self.chunk_tokens is None:
            return DecodeLoad(slots, util)
        return ContinuousLoad(slots, util, self.chunk_tokens[rows])


@dataclass(frozen=True)
class PoolGrid:
    """Per candidate: the most loaded stage's memory (weights, KV cache, workspace, overhead;
    bytes per GPU) and the metrics a pool candidate carries (seconds, requests/s)."""

    memory_bytes: np.ndarray
    ttft_s: np.ndarray
    ttft_mean_s: np.ndarray
    tpot_s: np.ndarray
    tpot_mean_s: np.ndarray
    requests_per_s: np.ndarray


def pool_grid(model: CostModel, rows: PoolRows) -> PoolGrid:
    """Every candidate of `rows` priced at its balanced split, one pipeline depth at a time."""
    n = len(rows)
    out = {name: np.zeros(n) for name in PoolGrid.__dataclass_fields__}
    pp = np.array([s.pp for s in rows.shape], dtype=np.int64)
    for depth in np.unique(pp).tolist():
        where = np.flatnonzero(pp == depth)
        shapes = ShapeGrid.of([rows.shape[i] for i in where.tolist()])
        with np.errstate(all="ignore"):
            costs = model.candidate_grid(shapes, rows.grid_load(where))
            for name, values in _depth_grid(model, costs, int(depth)).items():
                out[name][where] = values
    return PoolGrid(**out)


def _stage_parts(costs: CandidateCosts, layer_kinds: tuple[LayerKind, ...], pp: int, stage: int,
                 first: int, end: int) -> list[tuple[LayerCost, int]]:
    """What stage `stage` of `pp` holds, in evaluate.evaluate_stage's order."""
    counts = kind_counts(costs.kinds, layer_kinds, first, end)
    parts = [(costs.layer[k], n) for k, n in counts.items()]
    if stage == 0:
        parts.append((costs.first_stage, 1))
    parts.append((costs.last_stage if stage == pp - 1 else costs.transfer, 1))
    return parts


def _depth_grid(model: CostModel, costs: CandidateCosts, pp: int) -> dict[str, np.ndarray]:
    """Stage aggregates and metrics of candidates that all have `pp` stages."""
    layer_kinds = model.arch.layer_kinds
    bounds = balanced_boundaries(len(layer_kinds), pp)
    point = costs.point
    times: dict[str, list[Num]] = {step: [] for step in point.steps}
    memory: Num = None
    for s in range(pp):
        parts = _stage_parts(costs, layer_kinds, pp, s, bounds[s], bounds[s + 1])
        for step in point.steps:
            times[step].append(sum(c.steps[step].time_s * k for c, k in parts))
        activation = costs.activation_bytes + (costs.last_stage_activation_bytes if s == pp - 1 else 0)
        held = (sum(c.weight_bytes * k for c, k in parts) + sum(c.kv_cache_bytes * k for c, k in parts)
                + activation + costs.overhead_bytes)
        memory = held if memory is None else np.maximum(memory, held)
    sums = {step: sum(v) for step, v in times.items()}
    maxima = {step: np.maximum.reduce(v) if len(v) > 1 else v[0] for step, v in times.items()}

    def value(form: LinearForm) -> np.ndarray:
        total: Num = 0.0
        for step, which, coefficient in form.terms:
            agg = sums[step] if which == SUM else maxima[step] if which == MAX else np.maximum(
                sums[step], point.microbatches * maxima[step])
            total = total + coefficient * agg
        return np.broadcast_to(np.asarray(total, dtype=float), np.shape(point.microbatches))

    assert point.seconds_per_token is not None, "pool instances run continuous batching"
    throughput = costs.shape.dp / value(point.seconds_per_token)
    return {"memory_bytes": np.broadcast_to(memory, throughput.shape), "ttft_s": value(point.ttft),
            "ttft_mean_s": value(point.ttft_mean), "tpot_s": value(point.tpot),
            "tpot_mean_s": value(point.tpot_mean), "requests_per_s": throughput / point.scored_tokens}
