"""Integer tables for CP-SAT and the exhaustive oracle: the one place where scaling happens.

For a (shape, batch) candidate the objective is k * e2e (evaluate.Normalizers), so each candidate
gets its own time unit: one unit = 1 / (k * OBJECTIVE_SCALE) seconds, and the integer objective
of the chosen candidate is e2e in its units, i.e. OBJECTIVE_SCALE x the float objective.

Rounding is conservative: costs are rounded up, limits (memory, SLOs) down, so a plan the
integer model accepts is also accepted by the float evaluator. Memory is in kilobytes (1e3 B).

`table_grid` computes the same integers for every candidate at once (numpy, from
CostModel.candidate_grid) for screening; `build_table` builds one candidate's CandidateTable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.inputs.condition import Condition
from solver.physics.cost import CandidateCosts, LayerCost, vwhere
from solver.physics.evaluate import Normalizers

OBJECTIVE_SCALE = 1e8  # integer objective units per unit of the (unitless) float objective
MEMORY_UNIT_BYTES = 1e3
MAX_INT = 2**50  # anything larger is treated as "does not fit"


def _up(value: Any) -> Any:
    if isinstance(value, np.ndarray):  # the grid: the same integers, held in float64
        fits = np.isfinite(value) & (value < MAX_INT)
        rounded = np.ceil(np.where(fits, value, 0.0) - 1e-9 * np.abs(np.where(fits, value, 0.0)))
        return np.where(fits, np.minimum(rounded, MAX_INT), float(MAX_INT))
    if not math.isfinite(value) or value >= MAX_INT:
        return MAX_INT  # does not fit: any constraint using it fails
    return min(MAX_INT, math.ceil(value - 1e-9 * abs(value)))


def _down(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        fits = np.isfinite(value) & (value < MAX_INT)
        rounded = np.floor(np.where(fits, value, 0.0) + 1e-9 * np.abs(np.where(fits, value, 0.0)))
        return np.where(fits, np.minimum(rounded, MAX_INT), float(MAX_INT))
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
        return objective_units(prefill_sum, prefill_max, decode_sum, decode_max,
                               self.prefill_microbatches, self.decode_microbatches, self.output_tokens)


def objective_units(prefill_sum: Any, prefill_max: Any, decode_sum: Any, decode_max: Any,
                    prefill_microbatches: Any, decode_microbatches: Any, output_tokens: int) -> Any:
    """TTFT + output_tokens * TPOT from stage sums and maxima (one candidate, or arrays)."""
    tpot = np.maximum(decode_sum, decode_microbatches * decode_max) if isinstance(
        decode_sum, np.ndarray) else max(decode_sum, decode_microbatches * decode_max)
    return prefill_sum + (prefill_microbatches - 1) * prefill_max + output_tokens * tpot


def _position_extra(costs: CandidateCosts, first: bool, last: bool, pick: str) -> Any:
    """Extras of a stage position: embedding on the first stage, LM head on the last, the transfer
    to the next stage on every other."""
    parts: list[LayerCost] = []
    if first:
        parts.append(costs.first_stage)
    parts.append(costs.last_stage if last else costs.transfer)
    if pick == "memory":
        extra = sum(p.weight_bytes + p.kv_cache_bytes for p in parts)
        extra += costs.activation_bytes + costs.overhead_bytes
        if last:
            extra += costs.last_stage_activation_bytes
        return extra
    return sum(getattr(p, pick).time_s for p in parts)


def _unit_per_s(condition: Condition, costs: CandidateCosts, normalizers: Normalizers) -> Any:
    """Integer objective units per second of e2e latency (each candidate its own unit)."""
    return normalizers.objective_per_e2e_second(condition, costs) * OBJECTIVE_SCALE


def _time_limits(condition: Condition, unit_per_s: Any) -> tuple[Any, Any, Any]:
    """TTFT, TPOT and e2e SLOs in the candidate's units (None when not set), rounded down."""
    slo = condition.slo
    return tuple(None if ms is None else _down(ms / 1e3 * unit_per_s)  # type: ignore[return-value]
                 for ms in (slo.ttft_ms, slo.tpot_ms, slo.e2e_latency_ms))


def _memory_limit(condition: Condition) -> int:
    return _down(condition.cluster.usable_memory_bytes / MEMORY_UNIT_BYTES)


def build_table(index: int, condition: Condition, costs: CandidateCosts,
                normalizers: Normalizers) -> CandidateTable:
    unit_per_s = _unit_per_s(condition, costs, normalizers)
    pp = costs.shape.pp
    ttft_limit, tpot_limit, e2e_limit = _time_limits(condition, unit_per_s)

    def extra(pick: str, scale: float) -> tuple[int, ...]:
        return tuple(_up(_position_extra(costs, s == 0, s == pp - 1, pick) * scale) for s in range(pp))

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
        prefill_extra=extra("prefill", unit_per_s),
        decode_extra=extra("decode", unit_per_s),
        memory_extra=tuple(_up(_position_extra(costs, s == 0, s == pp - 1, "memory") / MEMORY_UNIT_BYTES)
                           for s in range(pp)),
        memory_limit=_memory_limit(condition),
        ttft_limit=ttft_limit,
        tpot_limit=tpot_limit,
        e2e_limit=e2e_limit,
    )


# ---- every candidate at once (screening) ---------------------------------------------------------
POSITIONS = {"only": (True, True), "first": (True, False), "middle": (False, False),
             "last": (False, True)}


@dataclass(frozen=True)
class TableGrid:
    """The integers of every candidate's CandidateTable, as float64 arrays (one entry per
    candidate); stage extras by position instead of by stage. Equal to build_table's integers up
    to the last-ulp differences numpy's transcendental functions may have (see `margin`)."""

    pp: np.ndarray
    microbatches: np.ndarray  # prefill = decode micro-batches
    output_tokens: int
    prefill_per_kind: list[np.ndarray]
    decode_per_kind: list[np.ndarray]
    memory_per_kind: list[np.ndarray]
    extras: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # position -> prefill, decode, memory
    memory_limit: int
    ttft_limit: np.ndarray | None
    tpot_limit: np.ndarray | None
    e2e_limit: np.ndarray | None

    def extra_sums(self) -> tuple[np.ndarray, ...]:
        """Sum over a pipeline's stages of each extra (prefill, decode, memory)."""
        pp = self.pp
        only, first, middle, last = (self.extras[p] for p in POSITIONS)
        return tuple(vwhere(pp == 1, o, f + (pp - 2) * m + x)
                     for o, f, m, x in zip(only, first, middle, last, strict=True))

    def extra_maxima(self) -> tuple[np.ndarray, ...]:
        """Largest extra of any stage (prefill, decode, memory)."""
        pp = self.pp
        only, first, middle, last = (self.extras[p] for p in POSITIONS)
        return tuple(np.where(pp == 1, o, np.maximum(np.maximum(f, x), np.where(pp > 2, m, 0.0)))
                     for o, f, m, x in zip(only, first, middle, last, strict=True))


def table_grid(condition: Condition, costs: CandidateCosts, normalizers: Normalizers) -> TableGrid:
    """Every candidate's integers from CostModel.candidate_grid costs (same formulas as
    build_table)."""
    unit_per_s = _unit_per_s(condition, costs, normalizers)
    ttft_limit, tpot_limit, e2e_limit = _time_limits(condition, unit_per_s)
    extras = {
        name: (_up(_position_extra(costs, first, last, "prefill") * unit_per_s),
               _up(_position_extra(costs, first, last, "decode") * unit_per_s),
               _up(_position_extra(costs, first, last, "memory") / MEMORY_UNIT_BYTES))
        for name, (first, last) in POSITIONS.items()
    }
    return TableGrid(
        pp=costs.shape.pp,
        microbatches=np.asarray(costs.prefill_microbatches, dtype=float),
        output_tokens=condition.workload.output_tokens,
        prefill_per_kind=[_up(costs.layer[k].prefill.time_s * unit_per_s) for k in costs.kinds],
        decode_per_kind=[_up(costs.layer[k].decode.time_s * unit_per_s) for k in costs.kinds],
        memory_per_kind=[
            _up((costs.layer[k].weight_bytes + costs.layer[k].kv_cache_bytes) / MEMORY_UNIT_BYTES)
            for k in costs.kinds],
        extras=extras,
        memory_limit=_memory_limit(condition),
        ttft_limit=ttft_limit,
        tpot_limit=tpot_limit,
        e2e_limit=e2e_limit,
    )
