"""Exhaustive oracle: every candidate x the optimal contiguous layer split, without CP-SAT.

A candidate's metrics are forms over its step kinds' stage sums S (constant: they do not depend on
the split) and slowest stages M (physics/serving.py). The serving point names two steps: the
scanned one (a static batch's decode) and the DP one (its prefill). We scan every distinct value a
stage of the scanned step can take as the threshold on its slowest stage, in increasing order, and
for each compute the smallest achievable slowest stage of the DP step with a min-max dynamic
program over contiguous splits (numpy over the (start, end) matrix), subject to per-stage memory.
The scan stops once the scanned term alone exceeds the best objective found or breaks an SLO. Used
by `--method exhaustive` and by the tests against CP-SAT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.errors import InputError
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import in_range
from solver.optimize.tables import CandidateTable
from solver.physics.numeric import distinct
from solver.runtime.limits import Deadline

INF = np.iinfo(np.int64).max // 4
MAX_ORACLE_LAYERS = 2_048  # (L + 1)^2 int64 matrices: 34 MB each at this depth


@dataclass(frozen=True)
class SplitResult:
    objective: int
    boundaries: list[int]


@dataclass(frozen=True)
class OracleResult:
    objective: int | None  # None: infeasible
    table: CandidateTable | None
    boundaries: list[int]
    candidates_checked: int
    complete: bool = True  # False: stopped at the deadline (not proven)


class _Matrices:
    """Stage quantities for every (start, end) pair: value[i, j] for layers [i, j), i < j."""

    def __init__(self, problem: PlanningProblem, table: CandidateTable) -> None:
        n = problem.num_layers
        prefix = np.array([problem.prefix_counts[k] for k in problem.kinds], dtype=np.int64)  # K x n+1
        seg = prefix[:, None, :] - prefix[:, :, None]  # K x (n+1) x (n+1): counts in [i, j)
        self.valid = np.triu(np.ones((n + 1, n + 1), dtype=bool), k=1)
        self.steps = {step: np.tensordot(np.array(stages.per_kind, dtype=np.int64), seg, axes=1)
                      for step, stages in table.steps.items()}
        self.memory = np.tensordot(np.array(table.memory.per_kind, dtype=np.int64), seg, axes=1)
        self.n = n


def _min_max_dp(m: _Matrices, table: CandidateTable, threshold: int) -> tuple[int, list[int]]:
    """Smallest slowest stage of the DP step with every stage's scanned step <= threshold and
    memory <= limit."""
    pp, n = table.pp, m.n
    dp, scan = table.steps[table.dp_step], table.steps[table.scan_step]
    best = np.full(n + 1, INF, dtype=np.int64)
    best[0] = 0
    choices: list[np.ndarray] = []
    for stage in range(pp):
        ok = (m.valid
              & (m.steps[table.scan_step] + scan.extra[stage] <= threshold)
              & (m.memory + table.memory.extra[stage] <= table.memory_limit))
        cand = np.maximum(best[:, None], m.steps[table.dp_step] + dp.extra[stage])
        cand = np.where(ok & (best[:, None] < INF), cand, INF)
        if stage == pp - 1:
            cand[:, :n] = INF  # the last stage ends at the last layer
        choices.append(cand.argmin(axis=0))
        best = cand.min(axis=0)
    if best[n] >= INF:
        return INF, []
    boundaries = [n]
    for stage in range(pp - 1, -1, -1):
        boundaries.append(int(choices[stage][boundaries[-1]]))
    return int(best[n]), boundaries[::-1]


def _thresholds(m: _Matrices, table: CandidateTable) -> np.ndarray:
    """Every value a stage of the scanned step can take, ascending, from the first one at which
    a split meets memory (feasibility is monotone in the threshold: binary search)."""
    scan = table.steps[table.scan_step]
    values = distinct(np.concatenate([(m.steps[table.scan_step] + scan.extra[s])[m.valid]
                                      for s in range(table.pp)]))[0]
    low, high = 0, len(values)
    while low < high:
        middle = (low + high) // 2
        if _min_max_dp(m, table, int(values[middle]))[0] < INF:
            high = middle
        else:
            low = middle + 1
    return values[low:]


def best_split(problem: PlanningProblem, table: CandidateTable,
               cutoff: int | None = None) -> SplitResult | None:
    """The optimal contiguous split of one candidate (None: no feasible split below `cutoff`)."""
    if table.pp == 1:
        return one_stage_split(problem, table, cutoff)
    return searched_split(problem, table, cutoff)


def one_stage_split(problem: PlanningProblem, table: CandidateTable,
                    cutoff: int | None = None) -> SplitResult | None:
    """pp = 1: every layer on the one stage, if it fits and meets the limits; what
    searched_split finds for one stage, without its (L + 1)^2 matrices."""
    n = problem.num_layers
    totals = problem.counts(0, n)
    if table.memory.stage(totals, 0) > table.memory_limit:
        return None
    maxima = {step: table.steps[step].stage(totals, 0) for step in (table.dp_step, table.scan_step)}
    sums = {step: stages.total(totals) for step, stages in table.steps.items()}
    if any(limit is not None and table.forms[form].value(sums, maxima, table.microbatches) > limit
           for form, limit in table.limits.items()):
        return None
    value = table.forms["objective"].value(sums, maxima, table.microbatches)
    return SplitResult(int(value), [0, n]) if cutoff is None or value <= cutoff else None


def searched_split(problem: PlanningProblem, table: CandidateTable,
                   cutoff: int | None = None) -> SplitResult | None:
    """best_split for any pp.

    Every form is monotone in both slowest stages. For each threshold on the scanned step's
    slowest stage (ascending) the DP gives the smallest slowest stage of the other step; a family
    broken even at that step's lower bound stays broken at every later threshold (stop), one
    broken at the DP's value only at this threshold (next)."""
    m = _Matrices(problem, table)
    totals = problem.counts(0, problem.num_layers)
    sums = {step: stages.total(totals) for step, stages in table.steps.items()}
    floor = {table.dp_step: -(-sums[table.dp_step] // table.pp)}  # slowest >= average stage
    best: SplitResult | None = None
    bound = INF if cutoff is None else cutoff + 1
    objective = table.forms["objective"]
    for threshold in _thresholds(m, table):
        lowest = floor | {table.scan_step: int(threshold)}
        if any(limit is not None and table.forms[form].value(sums, lowest, table.microbatches) > limit
               for form, limit in table.limits.items()):
            break
        if objective.value(sums, lowest, table.microbatches) >= bound:
            break  # every later threshold has a larger scanned term
        slowest, boundaries = _min_max_dp(m, table, int(threshold))
        if slowest >= INF:
            continue
        maxima = {table.dp_step: slowest, table.scan_step: int(threshold)}
        if any(limit is not None and table.forms[form].value(sums, maxima, table.microbatches) > limit
               for form, limit in table.limits.items()):
            continue
        value = objective.value(sums, maxima, table.microbatches)
        if value < bound:
            bound = value
            best = SplitResult(int(value), boundaries)
    return best


def split_cells(problem: PlanningProblem, pp: int) -> int:
    """Work of one min-max DP pass of `best_split`: pp stages x (L + 1)^2 (start, end) pairs."""
    return pp * (problem.num_layers + 1) ** 2


def check_size(problem: PlanningProblem) -> None:
    """The oracle holds (L + 1)^2 matrices per layer kind: refuse models too deep for it."""
    if problem.num_layers > MAX_ORACLE_LAYERS:
        raise InputError(problem.condition.source, "--method",
                         f"exhaustive keeps (L + 1)^2 split matrices; {problem.num_layers} layers "
                         f"exceed its limit of {MAX_ORACLE_LAYERS} (use --method cp-sat)")


def solve_exhaustive(problem: PlanningProblem, deadline: Deadline | None = None) -> OracleResult:
    """The optimum over every candidate; ties go to the lowest candidate index. When the run's
    deadline passes first, the best plan so far (`complete` False)."""
    check_size(problem)
    best_obj: int | None = None
    best_table: CandidateTable | None = None
    best_bounds: list[int] = []
    for index in range(problem.num_candidates):
        if deadline is not None and deadline.check("exhaustive search"):
            return OracleResult(best_obj, best_table, best_bounds, index, complete=False)
        table = problem.table(index)
        if not in_range(problem, table):
            continue  # outside the integer model (tables.REACH_LIMIT), as in CP-SAT
        result = best_split(problem, table, cutoff=best_obj)
        if result is None:
            continue
        if best_obj is None or result.objective < best_obj:
            best_obj, best_table, best_bounds = result.objective, table, result.boundaries
    return OracleResult(best_obj, best_table, best_bounds, problem.num_candidates)
