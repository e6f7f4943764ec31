"""The mixed cluster's optimum: template values settled lazily, replica counts by CP-SAT.

Total goodput is sum_t n_t X_t, where X_t (one replica's throughput) depends only on template t's
own load and layer split. For counts n_t >= 0, maximizing each X_t on its own is optimal whatever
the counts, so the problem splits exactly: X_t = max over loads and splits (ReplicaModel, CP-SAT),
then the counts (CountsModel, CP-SAT). Settling every template would cost a replica model per
template and load; instead each template starts at its proven bound (mixed_bounds.py), the counts
are solved on the bounds of the unsettled and the values of the settled templates, and the
templates the counts choose are settled, until the chosen ones are all settled: then the counts are
optimal for the true values (every bound is at least its true value). A template settles by its
loads in decreasing bound, each load's split by CP-SAT, stopping at the first bound that cannot
beat the best value found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from solver.inputs.pools import MixedCluster
from solver.optimize.mixed_bounds import EXCLUDED, BoundCache, value_bounds
from solver.optimize.mixed_formulation import Layers, ReplicaModel, solve_counts
from solver.optimize.mixed_tables import (
    MixedGrids,
    enumerate_templates,
    replica_table,
    replica_value,
    stage_options,
)
from solver.physics.mixed import Template
from solver.runtime.limits import Deadline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    """A template's exact best: its value (milli-tokens/s; EXCLUDED when no load has a feasible
    split), the load (index into its depth's loads) and the split."""

    value: int
    load: int | None = None
    boundaries: tuple[int, ...] = ()
    round_ns: int | None = None
    proven: bool = True


@dataclass
class MixedProblem:
    cluster: MixedCluster
    grids: MixedGrids
    layers: Layers
    templates: list[Template]
    bounds: list[np.ndarray]  # per template: value bound per load of its depth
    solves: int = 0  # replica models solved
    upper_bounds: list[int] = field(default_factory=list)  # per template: its best load's bound
    settled: dict[str, dict[int, Settled]] = field(default_factory=dict)  # per settle rule

    def upper(self, t: int) -> int:
        if not self.upper_bounds:
            self.upper_bounds = [int(b.max()) if b.size else EXCLUDED for b in self.bounds]
        return self.upper_bounds[t]


def build_mixed_problem(cluster: MixedCluster) -> MixedProblem:
    grids = MixedGrids(cluster)
    arch = grids.mixed.arch
    layers = Layers(arch.distinct_kinds, arch.layer_kinds, arch.layer_pattern)
    templates = enumerate_templates(cluster, stage_options(cluster))
    cache = BoundCache(grids, layers.num_layers)
    bounds = value_bounds(cache, templates)
    log.info("%d templates", len(templates))
    return MixedProblem(cluster, grids, layers, templates, bounds)


Settle = Callable[[MixedProblem, int, Deadline | None], Settled]


def loads_by_bound(problem: MixedProblem, t: int) -> list[int]:
    """The template's loads that pass the bounds, best bound first (ties: lower index)."""
    b = problem.bounds[t]
    order = np.lexsort((np.arange(b.size), -b))
    return [int(i) for i in order if b[i] != EXCLUDED]


def settle_optimal(problem: MixedProblem, t: int, deadline: Deadline | None = None) -> Settled:
    """X_t exactly: each load's best split by CP-SAT, loads in decreasing bound."""
    best = Settled(EXCLUDED)
    for i in loads_by_bound(problem, t):
        if problem.bounds[t][i] <= best.value:
            break
        table = replica_table(problem.grids, problem.templates[t], i)
        split = ReplicaModel(table, problem.layers).solve(deadline)
        problem.solves += 1
        if split.round_ns is None:
            continue
        value = replica_value(table.spt_coefficient, split.round_ns)
        if value > best.value:
            best = Settled(value, i, tuple(split.boundaries), split.round_ns, split.status == "optimal")
    return best


@dataclass(frozen=True)
class Group:
    template: int
    count: int
    settled: Settled


@dataclass(frozen=True)
class MixedResult:
    status: str  # optimal | feasible | infeasible
    value: int  # milli-tokens/s of all replicas
    groups: tuple[Group, ...]
    iterations: int
    settled: int  # templates settled


def _current(problem: MixedProblem, done: dict[int, Settled], t: int) -> tuple[int, bool]:
    return (done[t].value, True) if t in done else (problem.upper(t), False)


def _representatives(problem: MixedProblem, done: dict[int, Settled], allowed: list[int],
                     ) -> dict[tuple[int, ...], int]:
    """Per GPU usage vector, the template with the best current value (settled first on ties)."""
    best: dict[tuple[int, ...], tuple[int, bool, int]] = {}
    pools = len(problem.cluster.pools)
    for t in allowed:
        value, settled = _current(problem, done, t)
        if value == EXCLUDED or value <= 0:
            continue
        use = problem.templates[t].usage(pools)
        if use not in best or (value, settled, -t) > (best[use][0], best[use][1], -best[use][2]):
            best[use] = (value, settled, t)
    return {use: t for use, (_, _, t) in sorted(best.items())}


def best_counts(problem: MixedProblem, rule: str, settle: Settle,
                allowed: Callable[[Template], bool] = lambda t: True,
                deadline: Deadline | None = None) -> MixedResult:
    """The best replica counts over the allowed templates with values from `settle` (see the
    module doc); settled values are kept per rule and reused across calls."""
    done = problem.settled.setdefault(rule, {})
    candidates = [t for t, tpl in enumerate(problem.templates) if allowed(tpl)]
    iterations = 0
    while True:
        iterations += 1
        reps = _representatives(problem, done, candidates)
        if not reps:
            return MixedResult("infeasible", 0, (), iterations, len(done))
        usage, chosen = list(reps), list(reps.values())
        values = [_current(problem, done, t)[0] for t in chosen]
        counts = solve_counts(values, usage, problem.cluster.capacities, deadline)
        picked = [(t, n) for t, n in zip(chosen, counts.counts, strict=True) if n > 0]
        open_ = [t for t, _ in picked if t not in done]
        if not open_:
            groups = tuple(Group(t, n, done[t]) for t, n in picked)
            proven = counts.status == "optimal" and all(g.settled.proven for g in groups)
            status = ("optimal" if proven else "feasible") if groups else "infeasible"
            return MixedResult(status, counts.value, groups, iterations, len(done))
        for t in open_:
            done[t] = settle(problem, t, deadline)
