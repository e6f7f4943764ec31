"""The mixed cluster's exhaustive oracle (small cases), independent of CP-SAT.

Per template: every load that passes the proven bounds (mixed_bounds.py), in decreasing bound,
and every contiguous split of the layers into its stages (all compositions), each checked and
valued in the same integers as the CP-SAT models (mixed_tables.split_values); the template's value
is the best. Then the replica counts by dynamic programming over the GPUs left in each pool
(an unbounded knapsack in as many dimensions as pools): best(g) = max(0, max_t X_t + best(g - u_t)).
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

from solver.optimize.mixed_bounds import EXCLUDED
from solver.optimize.mixed_search import MixedProblem, Settled, loads_by_bound
from solver.optimize.mixed_tables import ReplicaTable, replica_table, replica_value, split_values

MAX_ORACLE_LAYERS = 64


def splits(num_layers: int, pp: int) -> list[list[int]]:
    """Every boundary list [0, b_1, ..., L] with non-empty stages."""
    return [[0, *cut, num_layers] for cut in combinations(range(1, num_layers), pp - 1)]


def best_split(problem: MixedProblem, table: ReplicaTable) -> tuple[int, list[int]] | None:
    """The smallest R_mix of any feasible split, and the first split that reaches it."""
    best: tuple[int, list[int]] | None = None
    for bounds in splits(problem.layers.num_layers, table.pp):
        counts = [problem.layers.counts(bounds[s], bounds[s + 1]) for s in range(table.pp)]
        ok, aggregates = split_values(table, counts)
        if ok and (best is None or aggregates["round_mix"] < best[0]):
            best = (aggregates["round_mix"], bounds)
    return best


def oracle_settle(problem: MixedProblem, t: int, deadline: object = None) -> Settled:
    best = Settled(EXCLUDED)
    for i in loads_by_bound(problem, t):
        if problem.bounds[t][i] <= best.value:
            break
        table = replica_table(problem.grids, problem.templates[t], i)
        found = best_split(problem, table)
        if found is None:
            continue
        value = replica_value(table.spt_coefficient, found[0])
        if value > best.value:
            best = Settled(value, i, tuple(found[1]), found[0])
    return best


def oracle_values(problem: MixedProblem) -> list[int]:
    """Every template's exact value (EXCLUDED: none feasible)."""
    if problem.layers.num_layers > MAX_ORACLE_LAYERS:
        raise ValueError(f"the oracle enumerates splits of at most {MAX_ORACLE_LAYERS} layers")
    return [oracle_settle(problem, t).value for t in range(len(problem.templates))]


def oracle_total(problem: MixedProblem, values: list[int]) -> int:
    """The best sum of count x value under the pools' GPUs (dynamic programming)."""
    pools = len(problem.cluster.pools)
    items = [(problem.templates[t].usage(pools), v) for t, v in enumerate(values) if v > 0]

    @cache
    def best(left: tuple[int, ...]) -> int:
        result = 0
        for use, value in items:
            if all(u <= g for u, g in zip(use, left, strict=True)):
                rest = tuple(g - u for u, g in zip(use, left, strict=True))
                result = max(result, value + best(rest))
        return result

    return best(problem.cluster.capacities)
