"""Integer tables for CP-SAT and the exhaustive oracle: the one place where scaling happens.

A candidate (shape, batch) has step kinds (a static batch: prefill and decode; physics/serving.py),
each priced per layer kind and per stage position, and its metrics are linear forms over the step
kinds' stage sums and maxima. The objective of a candidate is k * e2e (evaluate.Normalizers), so
each candidate gets its own time unit: one unit = 1 / (k * OBJECTIVE_SCALE) seconds, and the
integer objective of the chosen candidate is e2e in its units, i.e. OBJECTIVE_SCALE x the float
objective.

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
from solver.physics.cost import CandidateCosts, LayerCost
from solver.physics.evaluate import Normalizers
from solver.physics.numeric import Num, vmax, vwhere
from solver.physics.serving import MAX, ROUND, SUM, LinearForm, ServingPoint

OBJECTIVE_SCALE = 1e8  # integer objective units per unit of the (unitless) float objective
FORM_SCALE = 1024  # continuous batching: forms' real coefficients kept in 1 / FORM_SCALE
# The request form (seconds per scored token of a replica) has coefficients near 1 / the active
# sequences, e.g. 0.0174 x 1024 = 17.8 rounded up to 18: 1.3% short of the replica's capacity.
# It and its limit are kept REQUEST_REFINE times finer (1,138 / 1,139: 0.1%).
REQUEST_REFINE = 64
MEMORY_UNIT_BYTES = 1e3
MAX_INT = 2**50  # anything larger is treated as "does not fit"
# The integer model's range (optimize/bounds.py): a candidate whose objective or bounded metric can
# reach it is left out, so a limit at or above it binds no candidate left in and is kept at it
REACH_LIMIT = 2**52
FORMS = ("ttft", "tpot", "e2e")  # metrics an SLO may bound (condition keys slo.<form>_ms)


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
class IntForm:
    """A metric in a candidate's integer units: sum of coefficient * aggregate (see LinearForm).
    Coefficients may be arrays on the grid (one per candidate)."""

    terms: tuple[tuple[str, str, Num], ...]

    @classmethod
    def of(cls, form: LinearForm, scale: int = 1, rounding: str = "exact") -> IntForm:
        """The same form on integer stage times, its coefficients times `scale` made whole:
        "exact" (a static batch's are whole already: 1, m - 1 and the output tokens), "up" (a
        constraint's form: conservative), "nearest" (the objective)."""
        terms = []
        for step, which, c in form.terms:
            value = c * scale
            if rounding == "exact":
                if not np.all(np.asarray(value) == np.round(np.asarray(value))):
                    raise ValueError(f"form coefficient {c} is not an integer")
            else:
                value = _round_coefficient(value, rounding)
            terms.append((step, which, value))
        return cls(tuple(terms))

    def value(self, sums: dict[str, Num], maxima: dict[str, Num], microbatches: Num) -> Num:
        total: Num = 0
        for step, which, coefficient in self.terms:
            if which == SUM:
                total = total + coefficient * sums[step]
            elif which == MAX:
                total = total + coefficient * maxima[step]
            else:
                total = total + coefficient * vmax(sums[step], microbatches * maxima[step])
        return total

    def rounds(self) -> list[str]:
        """Step kinds whose round max(S, m M) the form uses."""
        return [step for step, which, _ in self.terms if which == ROUND]


@dataclass(frozen=True)
class StageTable:
    """One integer stage quantity: stage s = sum_k counts[k] * per_kind[k] + extra[s]."""

    per_kind: tuple[int, ...]
    extra: tuple[int, ...]  # per stage position s = 0..pp-1

    def stage(self, counts: list[int], stage: int) -> int:
        return sum(n * c for n, c in zip(counts, self.per_kind, strict=True)) + self.extra[stage]

    def total(self, totals: list[int]) -> int:
        """Summed over the stages of a pipeline holding `totals` layers of each kind."""
        return self.stage(totals, 0) - self.extra[0] + sum(self.extra)


@dataclass(frozen=True)
class CandidateTable:
    """Integer view of one candidate: stage times per step kind, stage memory, metric forms and
    limits, all in this candidate's units."""

    index: int
    costs: CandidateCosts
    pp: int
    microbatches: int
    steps: dict[str, StageTable]  # per step kind, in the serving point's order
    memory: StageTable  # weights + KV cache per layer; embedding / head / workspace as extras, KB
    weights: StageTable  # the same without the KV cache (what must fit with no sequence at all)
    memory_limit: int
    forms: dict[str, IntForm]  # ttft, tpot, e2e and the objective
    limits: dict[str, int | None]  # SLO per form (None: no SLO)
    dp_step: str  # the step whose slowest stage the oracle minimizes by dynamic programming
    scan_step: str  # the step whose slowest stage the oracle scans by threshold
    form_scale: int = 1  # forms' coefficients are in 1 / form_scale (the objective: OBJECTIVE_SCALE x it)

    @property
    def rounds(self) -> list[str]:
        """Step kinds whose round any form uses, in step order."""
        used = {step for form in self.forms.values() for step in form.rounds()}
        return [step for step in self.steps if step in used]


MEMORY_PICKS = ("memory", "weights")  # stage memory with and without the KV cache


def _position_extra(costs: CandidateCosts, first: bool, last: bool, pick: str) -> Any:
    """Extras of a stage position: embedding on the first stage, LM head on the last, the transfer
    to the next stage on every other."""
    parts: list[LayerCost] = []
    if first:
        parts.append(costs.first_stage)
    parts.append(costs.last_stage if last else costs.transfer)
    if pick in MEMORY_PICKS:  # "weights": without the extras' KV cache (the MTP module's)
        extra = sum(p.weight_bytes + (p.kv_cache_bytes if pick == "memory" else 0) for p in parts)
        extra += costs.activation_bytes + costs.overhead_bytes
        if last:
            extra += costs.last_stage_activation_bytes
        return extra
    return sum(p.steps[pick].time_s for p in parts)


def _scaled(value: Any, pick: str, unit_per_s: Any) -> Any:
    """A stage time in the candidate's units, or a memory size in kilobytes."""
    return value / MEMORY_UNIT_BYTES if pick in MEMORY_PICKS else value * unit_per_s


def _layer_memory(costs: CandidateCosts, with_kv: bool = True) -> list[Any]:
    return [_up((costs.layer[k].weight_bytes + (costs.layer[k].kv_cache_bytes if with_kv else 0))
                / MEMORY_UNIT_BYTES) for k in costs.kinds]


def _round_coefficient(value: Any, rounding: str) -> Any:
    if isinstance(value, np.ndarray):
        return np.ceil(value - 1e-12 * np.abs(value)) if rounding == "up" else np.round(value)
    return math.ceil(value - 1e-12 * abs(value)) if rounding == "up" else round(value)


@dataclass(frozen=True)
class Scaling:
    """A candidate's integer units: time units per second, the forms' coefficient scale, and the
    objective as a form of the aggregates in those units (see the module doc)."""

    unit_per_s: Any
    form_scale: int
    objective: LinearForm


def _scaling(condition: Condition, costs: CandidateCosts, normalizers: Normalizers) -> Scaling:
    """A static batch: objective = k * e2e, one unit = 1 / (k * OBJECTIVE_SCALE) s and whole
    coefficients. Continuous batching: the objective's own coefficient of the scanned step's round
    sets the unit, and coefficients are kept in 1 / FORM_SCALE."""
    point = costs.point
    if point.seconds_per_token is None:
        k = normalizers.objective_per_e2e_second(condition, costs)
        return Scaling(k * OBJECTIVE_SCALE, 1, point.e2e)
    objective = normalizers.objective_form(condition, costs)
    base = objective.coefficient(point.scan_step, ROUND)
    return Scaling(base * OBJECTIVE_SCALE, FORM_SCALE, objective.scaled(1 / base))


def _limits(condition: Condition, costs: CandidateCosts, scaling: Scaling) -> dict[str, Any]:
    """Each SLO in the candidate's units (None when not set), rounded down; and the offered
    request rate as a limit on the "request" form (see `_forms`)."""
    slo = condition.slo
    seconds = {form: None if value is None else value / 1e3
               for form, value in (("ttft", slo.ttft_ms), ("tpot", slo.tpot_ms), ("e2e", slo.e2e_latency_ms))}
    seconds["request"] = _request_seconds(condition, costs)
    finer = {"request": REQUEST_REFINE if scaling.form_scale > 1 else 1}
    return {form: None if value is None
            else _limit(value * scaling.unit_per_s * scaling.form_scale * finer.get(form, 1))
            for form, value in seconds.items()}


def _limit(value: Any) -> Any:
    """A limit in whole units, rounded down; one beyond the range is the range (not MAX_INT:
    a metric between the two that meets its limit would be refused)."""
    if isinstance(value, np.ndarray):
        fits = np.isfinite(value) & (value < REACH_LIMIT)
        rounded = np.floor(np.where(fits, value, 0.0) + 1e-9 * np.abs(np.where(fits, value, 0.0)))
        return np.where(fits, rounded, float(REACH_LIMIT))
    if not math.isfinite(value) or value >= REACH_LIMIT:
        return REACH_LIMIT
    return math.floor(value + 1e-9 * abs(value))


def _request_seconds(condition: Condition, costs: CandidateCosts) -> Any:
    """The "request" form's limit for workload.request_rate (None: no rate, or GPUs to buy, where
    replicas are added for the rate): a static batch's e2e <= dp B / rate; with continuous
    batching, seconds per scored token of a replica <= dp / (rate x scored tokens)."""
    rate = condition.workload.request_rate
    if rate is None or not condition.cluster.fixed:
        return None
    point, dp = costs.point, costs.shape.dp
    if point.seconds_per_token is None:
        return dp * point.sequences / rate
    return dp / (rate * point.scored_tokens)


def _forms(point: ServingPoint, scaling: Scaling) -> dict[str, IntForm]:
    """The metrics (coefficients rounded up: a plan the integers accept, the floats accept), the
    objective in the candidate's own units, and the "request" form the request rate bounds (a
    static batch's e2e; a replica's seconds per scored token)."""
    if scaling.form_scale == 1:
        forms = {name: IntForm.of(getattr(point, name)) for name in FORMS}
        return forms | {"objective": IntForm.of(scaling.objective), "request": forms["e2e"]}
    forms = {name: IntForm.of(getattr(point, name), scaling.form_scale, "up") for name in FORMS}
    request = IntForm.of(point.seconds_per_token_form(), scaling.form_scale * REQUEST_REFINE, "up")
    return forms | {"objective": IntForm.of(scaling.objective, scaling.form_scale, "nearest"),
                    "request": request}


def _memory_limit(condition: Condition) -> int:
    return _down(condition.cluster.usable_memory_bytes / MEMORY_UNIT_BYTES)


def build_table(index: int, condition: Condition, costs: CandidateCosts,
                normalizers: Normalizers) -> CandidateTable:
    scaling = _scaling(condition, costs, normalizers)
    unit_per_s = scaling.unit_per_s
    pp = costs.shape.pp
    point = costs.point

    def extra(pick: str) -> tuple[int, ...]:
        return tuple(_up(_scaled(_position_extra(costs, s == 0, s == pp - 1, pick), pick, unit_per_s))
                     for s in range(pp))

    steps = {step: StageTable(tuple(_up(costs.layer[k].steps[step].time_s * unit_per_s)
                                    for k in costs.kinds), extra(step))
             for step in point.steps}
    return CandidateTable(
        index=index,
        costs=costs,
        pp=pp,
        microbatches=point.microbatches,
        steps=steps,
        memory=StageTable(tuple(_layer_memory(costs)), extra("memory")),
        weights=StageTable(tuple(_layer_memory(costs, with_kv=False)), extra("weights")),
        memory_limit=_memory_limit(condition),
        forms=_forms(point, scaling),
        limits=_limits(condition, costs, scaling),
        dp_step=point.dp_step,
        scan_step=point.scan_step,
        form_scale=scaling.form_scale,
    )


# ---- every candidate at once (screening) ---------------------------------------------------------
POSITIONS = {"only": (True, True), "first": (True, False), "middle": (False, False),
             "last": (False, True)}


@dataclass(frozen=True)
class GridStages:
    """One stage quantity of every candidate: per layer kind, and the extras by position."""

    per_kind: list[np.ndarray]
    extras: dict[str, np.ndarray]  # position -> array

    def extra_sum(self, pp: np.ndarray) -> np.ndarray:
        """Sum over a pipeline's stages of the extras."""
        e = self.extras
        return vwhere(pp == 1, e["only"], e["first"] + (pp - 2) * e["middle"] + e["last"])

    def extra_max(self, pp: np.ndarray) -> np.ndarray:
        """Largest extra of any stage."""
        e = self.extras
        return np.where(pp == 1, e["only"], np.maximum(np.maximum(e["first"], e["last"]),
                                                       np.where(pp > 2, e["middle"], 0.0)))


@dataclass(frozen=True)
class TableGrid:
    """The integers of every candidate's CandidateTable, as float64 arrays (one entry per
    candidate); stage extras by position instead of by stage. Equal to build_table's integers up
    to the last-ulp differences numpy's transcendental functions may have (see screening's
    slack)."""

    pp: np.ndarray
    microbatches: np.ndarray
    steps: dict[str, GridStages]
    memory: GridStages
    weights: GridStages
    memory_limit: int
    forms: dict[str, IntForm]
    limits: dict[str, np.ndarray | None]
    form_scale: int = 1


def table_grid(condition: Condition, costs: CandidateCosts, normalizers: Normalizers) -> TableGrid:
    """Every candidate's integers from CostModel.candidate_grid costs (same formulas as
    build_table)."""
    scaling = _scaling(condition, costs, normalizers)
    unit_per_s = scaling.unit_per_s
    point = costs.point

    def stages(pick: str, per_kind: list[Any]) -> GridStages:
        return GridStages(per_kind, {
            name: _up(_scaled(_position_extra(costs, first, last, pick), pick, unit_per_s))
            for name, (first, last) in POSITIONS.items()})

    steps = {step: stages(step, [_up(costs.layer[k].steps[step].time_s * unit_per_s)
                                 for k in costs.kinds])
             for step in point.steps}
    return TableGrid(
        pp=costs.shape.pp,
        microbatches=np.asarray(point.microbatches, dtype=float),
        steps=steps,
        memory=stages("memory", _layer_memory(costs)),
        weights=stages("weights", _layer_memory(costs, with_kv=False)),
        memory_limit=_memory_limit(condition),
        forms=_forms(point, scaling),
        limits=_limits(condition, costs, scaling),
        form_scale=scaling.form_scale,
    )
