"""Disaggregated serving's candidates: one instance of each pool at an operating point.

A prefill candidate is (shape, chunk budget T, utilization u) with C = floor(k T / I) prompt slots
(physics/disaggregation.py); a decode candidate is (shape, max-num-seqs C, utilization u). Every
instance is one replica (dp = 1) of a shape whose GPU count is a divisor of a node or whole nodes
(the sizes the aggregated planner considers with idle GPUs allowed), with the balanced layer
split (`screening.balanced_boundaries`; exact for pp = 1). A candidate is kept when its KV
capacity family (weights, KV cache, workspace and overhead; optimize/families.py) holds and its
own part of the SLOs does: the prefill TTFT alone within slo.ttft_ms, the decode TPOT within
slo.tpot_ms. Numbers are floats here; optimize/disaggregated.py makes them integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from solver.inputs.condition import Condition
from solver.optimize.families import KV_CAPACITY, TPOT
from solver.optimize.problem import batch_grid, chunk_grid, expert_placements, layouts_of, utilization_grid
from solver.optimize.screening import balanced_boundaries
from solver.physics.continuous import DecodeLoad, decode_state, steady_state
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
        self.pool, self.condition = pool, condition
        placements, _ = expert_placements(condition, {s.ep for s in shapes})
        self.model = CostModel(condition, layouts_of(placements))
        self.normalizers = Normalizers.of(condition, self.model)

    def evaluate(self, shape: ParallelShape, load: Load) -> tuple[Metrics, bool, tuple[int, ...]]:
        """Metrics, whether its memory fits, and its layer split."""
        bounds = balanced_boundaries(self.condition.model.num_hidden_layers, shape.pp)
        costs = self.model.candidate(shape, load)
        stages = evaluate_stages(costs, self.model.arch.layer_kinds, bounds)
        metrics = serving_metrics(self.condition, costs, stages, self.normalizers)
        fits = all(row[3] for row in KV_CAPACITY.verify(self.condition, stages, metrics))
        return metrics, fits, tuple(bounds)

    def candidate(self, shape: ParallelShape, load: Load, metrics: Metrics,
                  bounds: tuple[int, ...]) -> PoolCandidate:
        return PoolCandidate(
            self.pool, shape, load, bounds, shape.gpus_used, metrics.requests_per_s,
            metrics.ttft_s, metrics.ttft_mean_s, metrics.tpot_s if self.pool == DECODE else 0.0,
            metrics.tpot_mean_s if self.pool == DECODE else 0.0,
            kv_bytes_per_gpu(self.model, shape, self.condition.workload.input_tokens))


def prefill_candidates(condition: Condition) -> list[PoolCandidate]:
    """Every prefill instance that fits and meets slo.ttft_ms on its own."""
    pool = instance_condition(prefill_condition(condition))
    shapes = enumerate_shapes(pool)
    evaluator = PoolEvaluator(PREFILL, pool, shapes)
    limit = condition.slo.ttft_ms
    i = condition.workload.input_tokens
    out = []
    for shape in shapes:
        for chunk in chunk_grid(condition):
            for u in utilization_grid(condition):
                load = prefill_load(chunk, u, i)
                if load.slots < shape.attn_dp or not steady_state(load, shape.pp, i, 1).feasible:
                    continue
                metrics, fits, bounds = evaluator.evaluate(shape, load)
                if fits and (limit is None or metrics.ttft_s * 1e3 <= limit):
                    out.append(evaluator.candidate(shape, load, metrics, bounds))
    log.info("%d prefill candidates over %d shapes", len(out), len(shapes))
    return out


def decode_candidates(condition: Condition) -> list[PoolCandidate]:
    """Every decode instance that fits and meets slo.tpot_ms."""
    pool = instance_condition(aggregated_condition(condition))
    shapes = enumerate_shapes(pool)
    evaluator = PoolEvaluator(DECODE, pool, shapes)
    out = []
    for shape in shapes:
        for slots in batch_grid(condition):
            if slots < shape.attn_dp:
                continue
            kept, fits = _decode_slots(evaluator, shape, slots, utilization_grid(condition))
            out += kept
            if not fits:
                break  # KV memory grows with max-num-seqs: larger ones do not fit either
    log.info("%d decode candidates over %d shapes", len(out), len(shapes))
    return out


def _decode_slots(evaluator: PoolEvaluator, shape: ParallelShape, slots: int,
                  levels: list[float]) -> tuple[list[PoolCandidate], bool]:
    out = []
    for u in levels:
        load = DecodeLoad(slots, u)
        metrics, fits, bounds = evaluator.evaluate(shape, load)
        if not fits:
            return out, False
        if all(row[3] for row in TPOT.verify(evaluator.condition, [], metrics)):
            out.append(evaluator.candidate(shape, load, metrics, bounds))
    assert decode_state(DecodeLoad(slots, levels[0]), shape.pp, 2).feasible
    return out, True
