"""CP-SAT models of a mixed cluster: one replica's layer split, and the replica counts.

ReplicaModel (one template at one load, tables in ns and kB, mixed_tables.py):
  boundary[s]        stage s holds layers [boundary[s], boundary[s+1]), 0 = b_0 < ... < b_pp = L
  count[s][k]        layers of kind k before boundary s (closed form, architecture.LayerPattern)
  slowest[x], round[x]  M_x >= every stage's time of step x; R_x >= S_x and R_x >= m M_x
  memory             every stage's weights + KV cache + extras <= its own card's usable memory
  SLOs               each metric form (physics/continuous.py) <= its limit
  objective          minimize R_mix: the replica's throughput is 1 / (c R_mix)

CountsModel: integer replicas n_g per template group (templates with the same GPUs per pool; the
group's best template stands for it), sum_g n_g gpus_g[p] <= GPUs of pool p, maximize
sum_g n_g value_g (milli-tokens/s); among the optimal counts, fewest GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from solver.optimize.mixed_tables import ReplicaTable
from solver.physics.architecture import LayerKind, LayerPattern
from solver.physics.serving import MAX, SUM
from solver.runtime.limits import Deadline, new_cp_solver, status_of

REPLICA_WORK = 5.0  # deterministic time per replica model (tiny models: proven long before)
COUNTS_WORK = 10.0


@dataclass(frozen=True)
class Layers:
    """The model's layers: their kinds in order, the distinct kinds, and the closed-form pattern."""

    kinds: tuple[LayerKind, ...]  # distinct, in the tables' order
    layer_kinds: tuple[LayerKind, ...]
    pattern: LayerPattern

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    def counts(self, first: int, end: int) -> list[int]:
        return [sum(1 for k in self.layer_kinds[first:end] if k == kind) for kind in self.kinds]


@dataclass(frozen=True)
class ReplicaSplit:
    status: str  # optimal | infeasible | unknown
    round_ns: int | None  # R_mix of the split
    boundaries: list[int]


class ReplicaModel:
    """The layer split of one replica (see the module doc)."""

    def __init__(self, table: ReplicaTable, layers: Layers) -> None:
        self.t, self.layers = table, layers
        self.model = cp_model.CpModel()
        n, pp = layers.num_layers, table.pp
        self.boundary = [self.model.new_constant(0)]
        self.boundary += [self.model.new_int_var(s, n - (pp - s), f"b{s}") for s in range(1, pp)]
        self.boundary.append(self.model.new_constant(n))
        for s in range(pp):
            self.model.add(self.boundary[s + 1] >= self.boundary[s] + 1)
        before = [[0] * len(layers.kinds)]
        before += [self._kinds_before(s, n - (pp - s)) for s in range(1, pp)]
        before.append(layers.counts(0, n))
        self.stage_counts = [[a - b for a, b in zip(before[s + 1], before[s], strict=True)]
                             for s in range(pp)]
        self._add_memory()
        self.sums, self.slowest, self.rounds = self._add_times()
        self._add_slos()
        self.model.minimize(self.rounds["mix"])
        # branch on the boundaries in order, smallest first: at most C(L-1, pp-1) leaves, each
        # fully propagated (CP-SAT's default search was seen bisecting the objective bound of a
        # 6-layer, 3-stage model for minutes)
        self.model.add_decision_strategy(self.boundary[1:-1], cp_model.CHOOSE_FIRST,
                                         cp_model.SELECT_MIN_VALUE)

    def _kinds_before(self, s: int, hi: int) -> list[cp_model.LinearExprT]:
        n, model, b = self.layers.num_layers, self.model, self.boundary[s]

        def clip(expr: cp_model.LinearExprT) -> cp_model.IntVar:
            var = model.new_int_var(0, n, "")
            model.add_max_equality(var, [expr, 0])
            return var

        def ceil_div(expr: cp_model.LinearExprT, d: int) -> cp_model.IntVar:
            var = model.new_int_var(0, n, "")
            model.add_division_equality(var, expr + d - 1, d)
            return var

        by_key = self.layers.pattern.counts_before(b, clip, ceil_div, (s, hi))
        return [by_key[LayerPattern.key(kind)] for kind in self.layers.kinds]

    def _stage(self, per_kind: tuple[int, ...], extra: int, s: int) -> cp_model.LinearExprT:
        return sum(a * c for a, c in zip(per_kind, self.stage_counts[s], strict=True)) + extra

    def _add_memory(self) -> None:
        for s, (per_kind, extra) in enumerate(self.t.memory):
            self.model.add(self._stage(per_kind, extra, s) <= self.t.limits_kb[s])

    def _add_times(self) -> tuple[dict, dict, dict]:
        n, m = self.layers.num_layers, self.t.microbatches
        sums, slowest, rounds = {}, {}, {}
        for x, stages in self.t.steps.items():
            top = sum(max(pk) * n + e for pk, e in stages)
            times = [self._stage(pk, e, s) for s, (pk, e) in enumerate(stages)]
            slowest[x] = self.model.new_int_var(0, top, f"max_{x}")
            for time in times:
                self.model.add(slowest[x] >= time)
            sums[x] = sum(times)
            rounds[x] = self.model.new_int_var(0, m * top, f"round_{x}")
            self.model.add(rounds[x] >= sums[x])
            self.model.add(rounds[x] >= m * slowest[x])
        return sums, slowest, rounds

    def _add_slos(self) -> None:
        for name, limit in self.t.slo.items():
            if limit is None:
                continue
            terms = []
            for x, which, c in self.t.forms[name].terms:
                var = self.sums[x] if which == SUM else self.slowest[x] if which == MAX else self.rounds[x]
                terms.append(int(c) * var)
            self.model.add(sum(terms) <= limit)

    def solve(self, deadline: Deadline | None = None) -> ReplicaSplit:
        solver = new_cp_solver(REPLICA_WORK, deadline, workers=1)
        solver.parameters.search_branching = type(solver.parameters).FIXED_SEARCH
        status = status_of(solver, solver.solve(self.model), self.model)
        if status not in ("optimal", "feasible"):
            return ReplicaSplit(status, None, [])
        bounds = [int(solver.value(b)) for b in self.boundary]
        return ReplicaSplit("optimal" if status == "optimal" else "unknown",
                            int(solver.value(self.rounds["mix"])), bounds)


@dataclass(frozen=True)
class Counts:
    status: str
    value: int  # sum of count x value
    counts: list[int]  # per group


def undominated(values: list[int], usage: list[tuple[int, ...]], copies: int = 4) -> list[int]:
    """Groups no other group beats: g is dominated when k <= `copies` replicas of another group j
    fit in g's GPUs (k u_j <= u_g in every pool) and are worth at least as much (k v_j >= v_g).
    Exact: any use of g can be swapped for those k replicas; usage vectors are distinct, so no two
    groups dominate each other, and a chain of dominations ends at a kept group."""
    u = np.array(usage, dtype=np.int64).reshape(len(usage), -1)
    v = np.array(values, dtype=np.int64)
    dominated = np.zeros(len(values), dtype=bool)
    for k in range(1, copies + 1):
        fits = (k * u[None, :, :] <= u[:, None, :]).all(axis=2)  # [g, j]: k copies of j fit in g
        worth = k * v[None, :] >= v[:, None]
        np.fill_diagonal(fits, False)
        dominated |= (fits & worth).any(axis=1)
    return [g for g in range(len(values)) if not dominated[g]]


def solve_counts(values: list[int], usage: list[tuple[int, ...]], capacity: tuple[int, ...],
                 deadline: Deadline | None = None) -> Counts:
    """Maximize sum n_g values[g] under the pools' GPUs; then the fewest GPUs at that value.
    Dominated groups (`undominated`) are left out of the model (count 0)."""
    keep = undominated(values, usage)
    found = _solve_counts([values[g] for g in keep], [usage[g] for g in keep], capacity, deadline)
    counts = [0] * len(values)
    for g, n in zip(keep, found.counts, strict=True):
        counts[g] = n
    return Counts(found.status, found.value, counts)


def _solve_counts(values: list[int], usage: list[tuple[int, ...]], capacity: tuple[int, ...],
                  deadline: Deadline | None = None) -> Counts:
    model = cp_model.CpModel()
    n = [model.new_int_var(0, min(c // u for c, u in zip(capacity, use, strict=True) if u), f"n{g}")
         for g, use in enumerate(usage)]
    for p, cap in enumerate(capacity):
        model.add(sum(n[g] * use[p] for g, use in enumerate(usage) if use[p]) <= cap)
    total = sum(v * x for v, x in zip(values, n, strict=True))
    model.maximize(total)
    solver = new_cp_solver(COUNTS_WORK, deadline, workers=1)
    status = status_of(solver, solver.solve(model), model)
    if status != "optimal":
        return Counts(status, 0, [0] * len(values))
    best = int(round(solver.objective_value))
    model.add(total == best)
    model.minimize(sum(n[g] * sum(use) for g, use in enumerate(usage)))
    status = status_of(solver, solver.solve(model), model)
    counts = [int(solver.value(x)) for x in n]
    return Counts("optimal" if status == "optimal" else "feasible", best, counts)

