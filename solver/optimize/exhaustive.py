"""Exhaustive oracle: every candidate x the optimal contiguous layer split, without CP-SAT.

For a candidate, the objective is  SP + (m_p - 1) * max_prefill + out * max(SD, m_d * max_decode)
where SP and SD (sums over stages) do not depend on the split. We scan every distinct value a stage's
decode time can take as the threshold on max_decode, in increasing order, and for each compute the
smallest achievable max_prefill with a min-max dynamic program over contiguous splits (numpy over
the (start, end) matrix), subject to per-stage memory. The scan stops once the decode term alone
exceeds the best objective found. Used by `--method exhaustive` and by the tests against CP-SAT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.errors import InputError
from solver.optimize.problem import PlanningProblem
from solver.optimize.tables import CandidateTable
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
        self.prefill = np.tensordot(np.array(table.prefill_per_kind, dtype=np.int64), seg, axes=1)
        self.decode = np.tensordot(np.array(table.decode_per_kind, dtype=np.int64), seg, axes=1)
        self.memory = np.tensordot(np.array(table.memory_per_kind, dtype=np.int64), seg, axes=1)
        self.n = n


def _min_max_prefill(m: _Matrices, table: CandidateTable, threshold: int) -> tuple[int, list[int]]:
    """Smallest max stage prefill with every stage's decode <= threshold and memory <= limit."""
    pp, n = table.pp, m.n
    best = np.full(n + 1, INF, dtype=np.int64)
    best[0] = 0
    choices: list[np.ndarray] = []
    for stage in range(pp):
        ok = (m.valid
              & (m.decode + table.decode_extra[stage] <= threshold)
              & (m.memory + table.memory_extra[stage] <= table.memory_limit))
        cand = np.maximum(best[:, None], m.prefill + table.prefill_extra[stage])
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


def best_split(problem: PlanningProblem, table: CandidateTable,
               cutoff: int | None = None) -> SplitResult | None:
    """The optimal contiguous split of one candidate (None: no feasible split below `cutoff`)."""
    m = _Matrices(problem, table)
    pp = table.pp
    totals = problem.counts(0, problem.num_layers)
    sp = table.stage_prefill(totals, 0) - table.prefill_extra[0] + sum(table.prefill_extra)
    sd = table.stage_decode(totals, 0) - table.decode_extra[0] + sum(table.decode_extra)
    stage_decode = np.concatenate([
        (m.decode + table.decode_extra[s])[m.valid] for s in range(pp)
    ])
    thresholds = np.unique(stage_decode)
    # feasibility (memory, decode <= threshold) is monotone in the threshold: binary-search the start
    low, high = 0, len(thresholds)
    while low < high:
        middle = (low + high) // 2
        if _min_max_prefill(m, table, int(thresholds[middle]))[0] < INF:
            high = middle
        else:
            low = middle + 1
    best: SplitResult | None = None
    bound = INF if cutoff is None else cutoff + 1
    prefill_floor = (table.prefill_microbatches - 1) * -(-sp // pp)  # max stage >= average stage
    for threshold in thresholds[low:]:
        tpot = max(sd, table.decode_microbatches * int(threshold))
        if table.tpot_limit is not None and tpot > table.tpot_limit:
            break
        if sp + prefill_floor + table.output_tokens * tpot >= bound:
            break  # every later threshold has a larger decode term
        max_prefill, boundaries = _min_max_prefill(m, table, int(threshold))
        if max_prefill >= INF:
            continue
        ttft = sp + (table.prefill_microbatches - 1) * max_prefill
        if table.ttft_limit is not None and ttft > table.ttft_limit:
            continue
        objective = ttft + table.output_tokens * tpot
        if table.e2e_limit is not None and objective > table.e2e_limit:
            continue
        if objective < bound:
            bound = objective
            best = SplitResult(objective, boundaries)
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
        result = best_split(problem, table, cutoff=best_obj)
        if result is None:
            continue
        if best_obj is None or result.objective < best_obj:
            best_obj, best_table, best_bounds = result.objective, table, result.boundaries
    return OracleResult(best_obj, best_table, best_bounds, problem.num_candidates)
