"""Integer tables for CP-SAT and the exhaustive oracle: the one place where scaling happens.

For a (shape, batch) candidate the objective is k * e2e (evaluate.Normalizers), so each candidate
gets its own time unit: one unit = 1 / (k * OBJECTIVE_SCALE) seconds, and the integer objective
of the chosen candidate is e2e in its units, i.e. OBJECTIVE_SCALE x the float objective.

Rounding is conservative: costs are rounded up, limits (memory, SLOs) down, so a plan the
integer model accepts is also accepted by the float evaluator. Memory is in kilobytes (1e3 B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solver.condition import Condition
from solver.cost import CandidateCosts, LayerCost
from solver.evaluate import Normalizers

OBJECTIVE_SCALE = 1e8  # integer objective units per unit of the (unitless) float objective
MEMORY_UNIT_BYTES = 1e3
MAX_INT = 2**50  # anything larger is treated as "does not fit"


def _up(value: float) -> int:
    if not math.isfinite(value) or value >= MAX_INT:
        return MAX_INT  # does not fit: any constraint using it fails
    return min(MAX_INT, math.ceil(value - 1e-9 * abs(value)))


def _down(value: float) -> int:
    if not math.isfinite(value) or value >= MAX_INT:
        return MAX_INT
    return min(MAX_INT, math.floor(value + 1e-9 * abs(value)))


@dataclass(frozen=True)
class CandidateTable:
    """Integer view of one candidate. Stage s time = sum_k count[s][k] * per_kind[k] + extra[s]."""

    index: int
    costs: CandidateCosts
    pp: int
    prefill_microbatches: int
    decode_microbatches: int
    output_tokens: int
    prefill_per_kind: tuple[int, ...]
    decode_per_kind: tuple[int, ...]
    memory_per_kind: tuple[int, ...]  # weights + KV cache of one layer, KB
    prefill_extra: tuple[int, ...]  # per stage position s = 0..pp-1
    decode_extra: tuple[int, ...]
    memory_extra: tuple[int, ...]  # embedding / head / activations / overhead, KB
    memory_limit: int
    ttft_limit: int | None
    tpot_limit: int | None
    e2e_limit: int | None

    def stage_prefill(self, counts: list[int], stage: int) -> int:
        return sum(n * c for n, c in zip(counts, self.prefill_per_kind, strict=True)) + (
            self.prefill_extra[stage]
        )

    def stage_decode(self, counts: list[int], stage: int) -> int:
        return sum(n * c for n, c in zip(counts, self.decode_per_kind, strict=True)) + (
            self.decode_extra[stage]
        )

    def stage_memory(self, counts: list[int], stage: int) -> int:
        return sum(n * c for n, c in zip(counts, self.memory_per_kind, strict=True)) + (
            self.memory_extra[stage]
        )

    def objective(self, prefill_sum: int, prefill_max: int, decode_sum: int, decode_max: int) -> int:
        """Integer objective = TTFT + output_tokens * TPOT in this candidate's units."""
        return prefill_sum + (self.prefill_microbatches - 1) * prefill_max + self.output_tokens * max(
            decode_sum, self.decode_microbatches * decode_max
        )


def _position_extra(costs: CandidateCosts, stage: int, pick: str) -> float:
    pp = costs.shape.pp
    parts: list[LayerCost] = []
    if stage == 0:
        parts.append(costs.first_stage)
    parts.append(costs.last_stage if stage == pp - 1 else costs.transfer)
    if pick == "memory":
        extra = sum(p.weight_bytes + p.kv_cache_bytes for p in parts)
        extra += costs.activation_bytes + costs.overhead_bytes
        if stage == pp - 1:
            extra += costs.last_stage_activation_bytes
        return extra
    return sum(getattr(p, pick).time_s for p in parts)


def build_table(index: int, condition: Condition, costs: CandidateCosts,
                normalizers: Normalizers) -> CandidateTable:
    unit_per_s = normalizers.objective_per_e2e_second(condition, costs) * OBJECTIVE_SCALE
    pp = costs.shape.pp
    slo = condition.slo

    def time_limit(ms: float | None) -> int | None:
        return None if ms is None else _down(ms / 1e3 * unit_per_s)

    return CandidateTable(
        index=index,
        costs=costs,
        pp=pp,
        prefill_microbatches=costs.prefill_microbatches,
        decode_microbatches=costs.decode_microbatches,
        output_tokens=condition.workload.output_tokens,
        prefill_per_kind=tuple(_up(costs.layer[k].prefill.time_s * unit_per_s) for k in costs.kinds),
        decode_per_kind=tuple(_up(costs.layer[k].decode.time_s * unit_per_s) for k in costs.kinds),
        memory_per_kind=tuple(
            _up((costs.layer[k].weight_bytes + costs.layer[k].kv_cache_bytes) / MEMORY_UNIT_BYTES)
            for k in costs.kinds
        ),
        prefill_extra=tuple(_up(_position_extra(costs, s, "prefill") * unit_per_s) for s in range(pp)),
        decode_extra=tuple(_up(_position_extra(costs, s, "decode") * unit_per_s) for s in range(pp)),
        memory_extra=tuple(_up(_position_extra(costs, s, "memory") / MEMORY_UNIT_BYTES)
                           for s in range(pp)),
        memory_limit=_down(condition.cluster.usable_memory_bytes / MEMORY_UNIT_BYTES),
        ttft_limit=time_limit(slo.ttft_ms),
        tpot_limit=time_limit(slo.tpot_ms),
        e2e_limit=time_limit(slo.e2e_latency_ms),
    )
