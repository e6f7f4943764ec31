"""Mixed clusters in integers: stage options, templates, loads and each replica's tables.

Units (the one place they are set for mixed clusters): stage times in nanoseconds (rounded up),
memory in kilobytes (rounded up; limits rounded down), metric forms' coefficients in 1 / FORM_SCALE
(rounded up), SLO limits in ns x FORM_SCALE (rounded down): a split the integers accept, the float
evaluator accepts. A replica's value is its throughput in milli-tokens/s of scored tokens,
`replica_value(c, R) = floor(1e12 / (c R))` with R its mix-step round max(S, m M) in ns and c the
serving point's seconds per scored token per second of that round (physics/continuous.py).

Every number of a (stage option, depth) is computed once for every load of that depth (numpy, the
cost model's grid path); a template's tables are read from those arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solver.inputs.pools import MAX_PIPELINE_STAGES, MixedCluster
from solver.optimize.problem import batch_grid, chunk_grid, utilization_grid
from solver.optimize.tables import FORM_SCALE, FORMS, IntForm
from solver.physics.continuous import ContinuousLoad, steady_state
from solver.physics.cost import CandidateCosts
from solver.physics.mixed import MixedCostModel, StageOption, Template
from solver.physics.points import serving_point
from solver.physics.serving import MAX, ROUND, SUM
from solver.physics.shapes import divisors, shape_violations

NS_PER_S = 1e9
KB = 1e3
VALUE_PER_TOKEN_S = 1e3  # replica values in milli-tokens/s
STEPS = ("mix", "chunk")
RANGE_LIMIT = 2**52  # a form or limit beyond this is outside the integer model (loads dropped)


def up(value: Any) -> Any:
    """Rounded up to a whole unit (arrays: float64 holding integers); non-finite -> RANGE_LIMIT."""
    arr = np.asarray(value, dtype=float)
    fine = np.isfinite(arr) & (arr < RANGE_LIMIT)
    out = np.where(fine, np.ceil(np.where(fine, arr, 0.0) - 1e-9 * np.abs(np.where(fine, arr, 0.0))),
                   float(RANGE_LIMIT))
    return out if isinstance(value, np.ndarray) else float(out)


def down(value: float) -> int:
    """Rounded down to a whole unit (limits); 1e-6 absorbs float noise in whole values."""
    return int(math.floor(value + 1e-6))


def replica_value(spt_coefficient: float, round_ns: int) -> int:
    """Throughput of one replica in milli-tokens/s (see the module doc)."""
    return int(math.floor(VALUE_PER_TOKEN_S * NS_PER_S / (spt_coefficient * round_ns)))


# ---- the decision space ----------------------------------------------------------------------
def stage_options(cluster: MixedCluster) -> list[StageOption]:
    """Per pool, each stage shape of that kind: tp within a node that splits the model's heads and
    widths (policy.tp), and for MoE models each expert grid ep x etp = tp (policy.ep, etp)."""
    options = []
    for pool in cluster.pools:
        cond = pool.condition  # policy.pp is the template's depth, not a stage's
        cond = cond.model_copy(update={"policy": cond.policy.model_copy(update={"pp": None})})
        for tp in divisors(pool.gpus_per_node):
            if not cond.policy.allows("tp", tp):
                continue
            grids = [(tp // etp, etp) for etp in divisors(tp)] if cond.model.is_moe else [(1, 1)]
            for ep, etp in grids:
                option = StageOption(pool.index, tp, ep, etp)
                shape = option.shape(1)
                if (not shape_violations(shape, cond, gpu_count=False)
                        and cond.policy.allows("ep", ep) and cond.policy.allows("etp", etp)):
                    options.append(option)
    return options


def _depths(cluster: MixedCluster) -> list[int]:
    cond = cluster.pools[0].condition
    deepest = min(MAX_PIPELINE_STAGES, cond.model.num_hidden_layers)
    return [p for p in range(1, deepest + 1) if cond.policy.allows("pp", p)]


def enumerate_templates(cluster: MixedCluster, options: list[StageOption]) -> list[Template]:
    """Every ordered sequence of pool runs (each pool at most once, at most
    `max_pools_per_replica` pools, one option and 1..4 stages per run), pp <= 4 and in policy.pp,
    each run within its pool's GPUs; a fixed order."""
    by_pool: dict[int, list[StageOption]] = {}
    for o in options:
        by_pool.setdefault(o.pool, []).append(o)
    depths = set(_depths(cluster))
    deepest = max(depths, default=0)
    found: set[Template] = set()

    def extend(stages: tuple[StageOption, ...], pools: tuple[int, ...]) -> None:
        if len(stages) in depths:
            found.add(Template(stages))
        if len(pools) == cluster.max_pools_per_replica:
            return
        for pool in sorted(by_pool):
            if pool in pools:
                continue
            for option in by_pool[pool]:
                for count in range(1, deepest - len(stages) + 1):
                    if count * option.gpus <= cluster.pools[pool].num_gpus:
                        extend(stages + (option,) * count, pools + (pool,))

    extend((), ())
    return sorted(found)


@dataclass(frozen=True)
class Loads:
    """The continuous loads of one pipeline depth (the steady state exists), in a fixed order."""

    slots: np.ndarray
    chunk: np.ndarray
    utilization: np.ndarray

    def __len__(self) -> int:
        return len(self.slots)

    def load(self, i: int) -> ContinuousLoad:
        return ContinuousLoad(int(self.slots[i]), float(self.utilization[i]), int(self.chunk[i]))

    def grid(self) -> ContinuousLoad:
        return ContinuousLoad(self.slots, self.utilization, self.chunk)


def loads_of(cluster: MixedCluster, pp: int) -> Loads:
    cond = cluster.pools[0].condition
    w = cond.workload
    rows = [(b, t, u) for b in batch_grid(cond) for t in chunk_grid(cond) for u in utilization_grid(cond)]
    slots, chunk, util = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    state = steady_state(ContinuousLoad(slots, util, chunk), pp, w.input_tokens, w.output_tokens)
    keep = np.asarray(state.feasible, dtype=bool)
    return Loads(slots[keep].astype(np.int64), chunk[keep].astype(np.int64), util[keep])


# ---- per (option, depth): every load at once --------------------------------------------------
@dataclass
class StageGrid:
    """One stage option at one depth, every load of that depth: integer arrays per layer kind."""

    costs: CandidateCosts
    time: dict[str, list[np.ndarray]]  # ns per layer of each kind, per step
    memory: list[np.ndarray]  # kB per layer of each kind, weights + KV cache
    weights: list[np.ndarray]  # kB per layer of each kind, weights only
    limit: int  # kB usable per GPU
    extras: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # cached stage extras


class MixedGrids:
    """The cost arrays of every (stage option, depth), built on first use."""

    def __init__(self, cluster: MixedCluster) -> None:
        self.cluster = cluster
        self.mixed = MixedCostModel(cluster)
        self.depths = _depths(cluster)
        self.loads = {pp: loads_of(cluster, pp) for pp in self.depths}
        self._grids: dict[tuple[StageOption, int], StageGrid] = {}
        self._forms: dict[int, tuple[dict[str, IntForm], np.ndarray, np.ndarray]] = {}

    def grid(self, option: StageOption, pp: int) -> StageGrid:
        key = (option, pp)
        if key not in self._grids:
            model = self.mixed.models[option.pool]
            costs = model.candidate(option.shape(pp), self.loads[pp].grid())
            n = len(self.loads[pp])
            ones = np.ones(n)
            self._grids[key] = StageGrid(
                costs,
                {x: [up(costs.layer[k].steps[x].time_s * NS_PER_S * ones) for k in costs.kinds]
                 for x in STEPS},
                [up((costs.layer[k].weight_bytes + costs.layer[k].kv_cache_bytes) / KB * ones)
                 for k in costs.kinds],
                [up(costs.layer[k].weight_bytes / KB * ones) for k in costs.kinds],
                down(self.cluster.pools[option.pool].condition.cluster.usable_memory_bytes / KB))
        return self._grids[key]

    def extra_time(self, template: Template, stage: int, step: str) -> np.ndarray:
        """ns beside the layers of `stage` (embedding, head, transfer), every load."""
        g = self.grid(template.stages[stage], template.pp)
        key = ("t", step, stage == 0, stage == template.pp - 1, template.crosses_pools(stage),
               template.run_gpus(stage))
        if key not in g.extras:
            cost = self.mixed.extra_time(template, stage, g.costs, step)
            g.extras[key] = up(cost.time_s * NS_PER_S * np.ones(len(self.loads[template.pp])))
        return g.extras[key]  # type: ignore[no-any-return]

    def extra_memory(self, template: Template, stage: int) -> np.ndarray:
        g = self.grid(template.stages[stage], template.pp)
        key = ("m", stage == 0, stage == template.pp - 1)
        if key not in g.extras:
            extra = MixedCostModel.extra_memory_bytes(template, stage, g.costs)
            g.extras[key] = up(extra / KB * np.ones(len(self.loads[template.pp])))
        return g.extras[key]  # type: ignore[no-any-return]

    def point_forms(self, pp: int) -> tuple[dict[str, IntForm], np.ndarray, np.ndarray]:
        """Every load's metric forms (integer coefficients), seconds-per-token coefficient of the
        mix round, and micro-batches: the serving point depends on the depth and load only."""
        if pp not in self._forms:
            point = serving_point(self.loads[pp].grid(), pp, self.cluster.pools[0].condition)
            n = len(self.loads[pp])
            forms = {name: IntForm.of(getattr(point, name), FORM_SCALE, "up") for name in FORMS}
            spt = point.seconds_per_token_form()
            self._forms[pp] = (forms, np.asarray(spt.coefficient("mix", ROUND) * np.ones(n)),
                               np.asarray(point.microbatches * np.ones(n)).astype(np.int64))
        return self._forms[pp]


@dataclass(frozen=True)
class ReplicaTable:
    """One replica of `template` at load `load` (index into the depth's loads), in integers."""

    template: Template
    load: int
    steps: dict[str, list[tuple[tuple[int, ...], int]]]  # per step, per stage: (per kind, extra)
    memory: list[tuple[tuple[int, ...], int]]  # per stage: (per kind, extra), kB
    limits_kb: list[int]  # per stage
    microbatches: int
    forms: dict[str, IntForm]  # ttft, tpot, e2e with scalar coefficients
    slo: dict[str, int | None]  # per form, in ns x FORM_SCALE
    spt_coefficient: float

    @property
    def pp(self) -> int:
        return self.template.pp


def slo_limits(cluster: MixedCluster) -> dict[str, int | None]:
    slo = cluster.pools[0].condition.slo
    ms = {"ttft": slo.ttft_ms, "tpot": slo.tpot_ms, "e2e": slo.e2e_latency_ms}
    return {k: None if v is None else down(v * 1e6 * FORM_SCALE) for k, v in ms.items()}


def replica_table(grids: MixedGrids, template: Template, i: int) -> ReplicaTable:
    pp = template.pp
    stage_grids = [grids.grid(o, pp) for o in template.stages]
    forms, spt, micro = grids.point_forms(pp)
    steps = {x: [(tuple(int(a[i]) for a in g.time[x]), int(grids.extra_time(template, s, x)[i]))
                 for s, g in enumerate(stage_grids)] for x in STEPS}
    memory = [(tuple(int(a[i]) for a in g.memory), int(grids.extra_memory(template, s)[i]))
              for s, g in enumerate(stage_grids)]
    scalar = {name: IntForm(tuple((x, w, _scalar(c, i)) for x, w, c in f.terms))
              for name, f in forms.items()}
    return ReplicaTable(template, i, steps, memory, [g.limit for g in stage_grids], int(micro[i]),
                        scalar, slo_limits(grids.cluster), float(spt[i]))


def _scalar(coefficient: Any, i: int) -> int:
    value = np.asarray(coefficient) * np.ones(1)
    item = value[i] if value.size > 1 else value[0]
    return int(item) if np.isfinite(item) and item < RANGE_LIMIT else RANGE_LIMIT


def split_values(t: ReplicaTable, counts: list[list[int]]) -> tuple[bool, dict[str, int]]:
    """Whether a split (layers of each kind per stage) meets memory and the SLOs, and its
    aggregates: S and M per step, R per step (the oracle, the heuristic and the checks)."""
    for s, (per_kind, extra) in enumerate(t.memory):
        if sum(a * n for a, n in zip(per_kind, counts[s], strict=True)) + extra > t.limits_kb[s]:
            return False, {}
    sums, maxima = {}, {}
    for x, stages in t.steps.items():
        times = [sum(a * n for a, n in zip(pk, counts[s], strict=True)) + e
                 for s, (pk, e) in enumerate(stages)]
        sums[x], maxima[x] = sum(times), max(times)
    for name, limit in t.slo.items():
        if limit is not None and t.forms[name].value(sums, maxima, t.microbatches) > limit:
            return False, {}
    rounds = {x: max(sums[x], t.microbatches * maxima[x]) for x in t.steps}
    return True, {**{f"{SUM}_{x}": v for x, v in sums.items()},
                  **{f"{MAX}_{x}": v for x, v in maxima.items()},
                  **{f"{ROUND}_{x}": v for x, v in rounds.items()}}
