"""Constraint families: each hard constraint defined once, for every place that needs it.

A family holds
  key         the condition key it enforces ("memory", "slo.ttft_ms", ...)
  reason      the screening reason counted in plan.json's solver.candidates_removed
  removal     the reviewer's wording of a removal (infeasibility messages)
  runner_up   the runner-up table's wording when it excludes a whole family of shapes
  lower_bound its value on a candidate's balanced-split bounds (screening: exact removals)
  split_ok    whether a concrete split of a candidate meets it (screening's incumbent, oracle)
  add         its CP-SAT encoding (formulation.PlacementModel), behind assumption literals when
              the infeasibility core asks which families bind
  verify      the solver-free verifier's rows, from the float evaluation of a plan

FAMILIES lists them in the order screening attributes a removal: memory (the weights, workspace
and overhead fit at all), kv_capacity (the KV cache of every slot fits beside them; the
concurrency limit), then the SLOs. Adding a family is one class (or
one instance) here and its tests; screening, the model, the core, the oracle, the verifier and
the reports iterate over FAMILIES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from solver.inputs.condition import Condition
from solver.optimize.bounds import Bounds
from solver.optimize.tables import CandidateTable, TableGrid
from solver.physics.evaluate import Metrics, StageEval
from solver.physics.numeric import Num

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

GB = 1e9
Row = tuple[str, str, str, bool, str]  # name, value, limit, passed, detail (document/verify rows)


class Encoder:
    """What a family's CP-SAT encoding sees of the model (formulation.PlacementModel)."""

    model: cp_model.CpModel

    def use(self, t: CandidateTable) -> cp_model.IntVar: ...

    def literals(self, name: str) -> list[cp_model.IntVar]: ...

    def form(self, t: CandidateTable, name: str) -> cp_model.LinearExprT: ...


@dataclass(frozen=True)
class StageMemoryFamily:
    """Every pipeline stage's GPUs hold what the family counts (`table`: the CandidateTable's stage
    quantity in kilobytes) within the usable memory."""

    key: str
    reason: str
    removal: str
    runner_up: str
    core_prefix: str  # the infeasibility core's literal of one stage: prefix + stage index
    table: str  # "weights" (no KV cache) or "memory" (with the KV cache)
    detail: str  # the verifier's wording of what is counted

    def core_name(self, stage: int) -> str:
        return f"{self.core_prefix}{stage}"

    def limit(self, t: CandidateTable | TableGrid) -> Num:
        return t.memory_limit

    def lower_bound(self, t: CandidateTable | TableGrid, b: Bounds) -> Num:
        return b.weights_lb if self.table == "weights" else b.memory_lb

    def split_ok(self, t: CandidateTable, stages: dict[str, list[int]], sums: dict[str, int],
                 maxima: dict[str, int]) -> bool:
        return all(value <= t.memory_limit for value in stages[self.table])

    def add_stage(self, enc: Encoder, t: CandidateTable, stage: int,
                  counts: Sequence[cp_model.LinearExprT]) -> None:
        table = getattr(t, self.table)
        held = sum(c * n for c, n in zip(table.per_kind, counts, strict=True))
        enc.model.add(held + table.extra[stage] <= t.memory_limit).only_enforce_if(
            [enc.use(t), *enc.literals(self.core_name(stage))])

    def verify(self, condition: Condition, stages: list[StageEval], metrics: Metrics) -> list[Row]:
        limit = condition.cluster.usable_memory_bytes
        rows = []
        for s in stages:
            held = s.memory_bytes - (s.kv_cache_bytes if self.table == "weights" else 0)
            rows.append((f"{self.key}.stage{s.stage}", f"{held / GB:.2f} GB", f"<= {limit / GB:.2f} GB",
                         held <= limit, self.detail))
        return rows


@dataclass(frozen=True)
class SloFamily:
    """A latency SLO: one metric form of the serving model (physics/serving.py) under a limit."""

    key: str  # slo.<form>_ms
    form: str  # ttft | tpot | e2e
    reason: str
    removal: str
    runner_up: str
    measured: Callable[[Metrics], float]  # the metric in seconds, from the float evaluation

    def slo_ms(self, condition: Condition) -> float | None:
        return getattr(condition.slo, self.key.removeprefix("slo."))

    def limit(self, t: CandidateTable | TableGrid) -> Any:
        return t.limits[self.form]

    def lower_bound(self, t: CandidateTable | TableGrid, b: Bounds) -> Num:
        return b.form_lb(t.forms[self.form])

    def split_ok(self, t: CandidateTable, stages: dict[str, list[int]], sums: dict[str, int],
                 maxima: dict[str, int]) -> bool:
        limit = t.limits[self.form]
        return limit is None or t.forms[self.form].value(sums, maxima, t.microbatches) <= limit

    def add(self, enc: Encoder, t: CandidateTable) -> None:
        limit = t.limits[self.form]
        if limit is not None:
            enc.model.add(enc.form(t, self.form) <= limit).only_enforce_if(enc.literals(self.key))

    def verify(self, condition: Condition, stages: list[StageEval], metrics: Metrics) -> list[Row]:
        bound = self.slo_ms(condition)
        if bound is None:
            return []
        value = self.measured(metrics) * 1e3
        return [(self.key, f"{value:.2f} ms", f"<= {bound:g} ms", value <= bound, "")]


MEMORY = StageMemoryFamily(
    "memory", "memory",
    "per-GPU memory (weights + activations + overhead) exceeds the usable memory with no sequence",
    "weights do not fit", "memory on pipeline stage ", "weights",
    "weights + activation workspace + runtime overhead, per GPU (no KV cache)")
KV_CAPACITY = StageMemoryFamily(
    "kv_capacity", "kv_capacity",
    "the KV cache of max-num-seqs sequences does not fit beside the weights",
    "KV cache does not fit", "kv capacity on pipeline stage ", "memory",
    "weights + KV cache of every slot (continuous: paged, at the mean context; static: full "
    "context) + activations + overhead, per GPU")
STAGE_FAMILIES = (MEMORY, KV_CAPACITY)
TTFT = SloFamily("slo.ttft_ms", "ttft", "ttft_slo",
                 "TTFT above slo.ttft_ms even with a perfectly balanced pipeline", "TTFT SLO missed",
                 lambda m: m.ttft_s)
TPOT = SloFamily("slo.tpot_ms", "tpot", "tpot_slo",
                 "TPOT above slo.tpot_ms even with a perfectly balanced pipeline", "TPOT SLO missed",
                 lambda m: m.tpot_s)
E2E = SloFamily("slo.e2e_latency_ms", "e2e", "e2e_slo",
                "end-to-end latency above slo.e2e_latency_ms even when perfectly balanced",
                "e2e SLO missed", lambda m: m.e2e_latency_s)


@dataclass(frozen=True)
class RateFamily(SloFamily):
    """workload.request_rate: the plan's capacity at its operating point serves the offered rate
    (the "request" form of tables.py under 1 / rate per replica's share). Conditions whose GPU
    count the planner chooses add replicas for the rate instead (planning reports how many)."""

    def verify(self, condition: Condition, stages: list[StageEval], metrics: Metrics) -> list[Row]:
        rate = condition.workload.request_rate
        if rate is None or not condition.cluster.fixed:
            return []
        served = metrics.requests_per_s
        return [(self.key, f"{served:.4g} requests/s", f">= {rate:g} requests/s",
                 served >= rate * (1 - 1e-9), "capacity at the plan's operating point")]


RATE = RateFamily("workload.request_rate", "request", "request_rate",
                  "capacity below workload.request_rate even with a perfectly balanced pipeline",
                  "request rate not served", lambda m: 1 / m.requests_per_s)
SLO_FAMILIES = (TTFT, TPOT, E2E, RATE)
FAMILIES: tuple[StageMemoryFamily | SloFamily, ...] = (*STAGE_FAMILIES, *SLO_FAMILIES)
