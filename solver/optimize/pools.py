"""Disaggregated serving's candidates: one instance of each pool at an operating point.

A prefill candidate is (shape, chunk budget T, utilization u) with C = floor(k T / I) prompt slots
(physics/disaggregation.py); a decode candidate is (shape, max-num-seqs C, utilization u). Every
instance is one replica (dp = 1) of a shape whose GPU count is a divisor of a node or whole nodes
(the sizes the aggregated planner considers with idle GPUs allowed), with the balanced layer
split (`screening.balanced_boundaries`; exact for pp = 1). A candidate is kept when its KV
capacity family (weights, KV cache, workspace and overhead; optimize/families.py) holds and its
own part of the SLOs does: the prefill TTFT alone within slo.ttft_ms, the decode TPOT within
slo.tpot_ms. Numbers are floats here; optimize/disaggregated.py makes them integers.

`prefill_candidates` and `decode_candidates` price every operating point one by one: the
definition of the lists (and what `--method exhaustive` pairs). `paraplan solve` takes the
candidates CP-SAT can choose from optimize/pool_search.py, which finds the same ones with the
cost model's grid and prices far fewer one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from solver.inputs.condition import Condition
from solver.optimize.families import KV_CAPACITY, TPOT
from solver.optimize.problem import batch_grid, chunk_grid, expert_placements, layouts_of, utilization_grid
from solver.optimize.screening import balanced_boundaries
from solver.physics.continuous import ContinuousLoad, DecodeLoad, steady_state
from solver.physics.cost import CostModel
from solver.physics.disaggregation import (
    aggregated_condition,
    kv_bytes_per_gpu,
    prefill_condition,
    prefill_load,
)
from solver.physics.evaluate import Metrics, Normalizers, evaluate_stages, serving_metrics
from solver.physics.points import Load
from solver.physics.shapes import ParallelShape, enumerate_shapes

log = logging.getLogger(__name__)
PREFILL, DECODE = "prefill", "decode"


@dataclass(frozen=True)
class Priced:
    """One instance priced one by one: its metrics, whether its KV capacity family holds, its
    layer split and the memory of its fullest stage (bytes per GPU)."""

    metrics: Metrics
    fits: bool
    boundaries: tuple[int, ...]
    memory_bytes: float


@dataclass(frozen=True)
class PoolCandidate:
    """One instance of a pool at an operating point, evaluated.

    ttft_s: prefill: the request's TTFT in the prefill pool (own chunked prefill + slot wait) at
    the SLO percentile; decode: the admission wait it adds to TTFT. tpot_s: decode only.
    requests_per_s: what one instance completes at this operating point (its capacity there)."""

    pool: str
    shape: ParallelShape
    load: Load
    boundaries: tuple[int, ...]
    gpus: int
    requests_per_s: float
    ttft_s: float
    ttft_mean_s: float
    tpot_s: float
    tpot_mean_s: float
    kv_bytes_per_gpu: float  # one prompt's KV on one GPU that holds it (sent or received)


def instance_condition(condition: Condition) -> Condition:
    """A pool's view of the cluster: instances of one replica, any size up to the cluster."""
    cluster = condition.cluster.model_copy(update={"fixed": False})
    return condition.model_copy(update={"cluster": cluster})


class PoolEvaluator:
    """Prices instances of one pool under one condition (the prefill or the decode condition)."""

    def __init__(self, pool: str, condition: Condition, shapes: list[ParallelShape]) -> None:
        self.pool, self.condition, self.shapes = pool, condition, shapes
        placements, _ = expert_placements(condition, {s.ep for s in shapes})
        self.model = CostModel(condition, layouts_of(placements))
        self.normalizers = Normalizers.of(condition, self.model)

    def evaluate(self, shape: ParallelShape, load: Load) -> Priced:
        """Metrics, whether its memory fits, its layer split and its fullest stage's memory."""
        bounds = balanced_boundaries(self.condition.model.num_hidden_layers, shape.pp)
        costs = self.model.candidate(shape, load)
        stages = evaluate_stages(costs, self.model.arch.layer_kinds, bounds)
        metrics = serving_metrics(self.condition, costs, stages, self.normalizers)
        fits = all(row[3] for row in KV_CAPACITY.verify(self.condition, stages, metrics))
        return Priced(metrics, fits, tuple(bounds), max(s.memory_bytes for s in stages))

    @property
    def slo_limit_ms(self) -> float | None:
        """The limit of its own part of the SLOs: slo.tpot_ms (decode) or slo.ttft_ms (prefill)."""
        return self.condition.slo.tpot_ms if self.pool == DECODE else self.condition.slo.ttft_ms

    def meets_slo(self, metrics: Metrics) -> bool:
        """Its own part of the SLOs: the decode TPOT (the TPOT family), the prefill TTFT alone."""
        if self.pool == DECODE:
            return all(row[3] for row in TPOT.verify(self.condition, [], metrics))
        limit = self.slo_limit_ms
        return limit is None or metrics.ttft_s * 1e3 <= limit

    def candidate(self, shape: ParallelShape, load: Load, priced: Priced) -> PoolCandidate:
        metrics = priced.metrics
        return PoolCandidate(
            self.pool, shape, load, priced.boundaries, shape.gpus_used, metrics.requests_per_s,
            metrics.ttft_s, metrics.ttft_mean_s, metrics.tpot_s if self.pool == DECODE else 0.0,
            metrics.tpot_mean_s if self.pool == DECODE else 0.0,
            kv_bytes_per_gpu(self.model, shape, self.condition.workload.input_tokens))


def pool_evaluator(condition: Condition, pool: str) -> PoolEvaluator:
    """The evaluator of one pool's instances: the prefill or the decode condition, any size."""
    view = instance_condition(prefill_condition(condition) if pool == PREFILL
                              else aggregated_condition(condition))
    return PoolEvaluator(pool, view, enumerate_shapes(view))


def prefill_loads(condition: Condition, shape: ParallelShape) -> list[ContinuousLoad]:
    """A prefill shape's operating points in order (chunk budget, then utilization) where a slot
    holds an attention group's prompt and a steady state exists."""
    i = condition.workload.input_tokens
    loads = [prefill_load(chunk, u, i) for chunk in chunk_grid(condition)
             for u in utilization_grid(condition)]
    return [load for load in loads if load.slots >= shape.attn_dp and _steady(load, shape.pp, i)]


@lru_cache(maxsize=4096)
def _steady(load: ContinuousLoad, pp: int, input_tokens: int) -> bool:
    return bool(steady_state(load, pp, input_tokens, 1).feasible)


def prefill_candidates(condition: Condition) -> list[PoolCandidate]:
    """Every prefill instance that fits and meets slo.ttft_ms on its own (each priced one by one:
    the definition optimize/pool_search.py screens)."""
    evaluator = pool_evaluator(condition, PREFILL)
    shapes = evaluator.shapes
    out = []
    for shape in shapes:
        for load in prefill_loads(condition, shape):
            priced = evaluator.evaluate(shape, load)
            if priced.fits and evaluator.meets_slo(priced.metrics):
                out.append(evaluator.candidate(shape, load, priced))
    log.info("%d prefill candidates over %d shapes", len(out), len(shapes))
    return out


def decode_candidates(condition: Condition) -> list[PoolCandidate]:
    """Every decode instance that fits and meets slo.tpot_ms (each priced one by one: the
    definition optimize/pool_search.py screens). A shape's max-num-seqs values are tried in
    increasing order, each at every utilization, up to the first operating point that does not fit
    (KV memory grows with max-num-seqs: larger ones do not fit either)."""
    evaluator = pool_evaluator(condition, DECODE)
    shapes = evaluator.shapes
    out = []
    for shape in shapes:
        for load in decode_loads(condition, shape):
            priced = evaluator.evaluate(shape, load)
            if not priced.fits:
                break
            if evaluator.meets_slo(priced.metrics):
                out.append(evaluator.candidate(shape, load, priced))
    log.info("%d decode candidates over %d shapes", len(out), len(shapes))
    return out


def decode_loads(condition: Condition, shape: ParallelShape) -> list[DecodeLoad]:
    """A decode shape's operating points in order: max-num-seqs (at least one sequence per
    attention group), then utilization."""
    return [DecodeLoad(slots, u) for slots in batch_grid(condition) if slots >= shape.attn_dp
            for u in utilization_grid(condition)]
