"""Runner-ups: the best plan of each other parallel-shape family, and why it lost.

For every family (tp only, tp+pp, tp+ep, ...) the candidates are scanned in order of their lower
bound and split exactly (exhaustive.best_split), stopping once the bound passes the family's best.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.exhaustive import best_split
from solver.formulation import _bounds
from solver.problem import PlanningProblem
from solver.tables import OBJECTIVE_SCALE, CandidateTable


@dataclass(frozen=True)
class Alternative:
    family: str
    table: CandidateTable | None
    boundaries: list[int]
    objective: float | None  # unitless, as the optimizer sees it
    reason: str


def _why_infeasible(problem: PlanningProblem, tables: list[CandidateTable]) -> str:
    reasons: dict[str, int] = {}
    for t in tables:
        b = _bounds(problem, t)
        if b.memory_lb > t.memory_limit:
            key = "memory does not fit"
        elif t.ttft_limit is not None and b.prefill_sum + (t.prefill_microbatches - 1) * b.max_prefill_lb > t.ttft_limit:
            key = "TTFT SLO missed"
        elif t.tpot_limit is not None and max(b.decode_sum, t.decode_microbatches * b.max_decode_lb) > t.tpot_limit:
            key = "TPOT SLO missed"
        else:
            key = "no layer split meets memory and SLOs together"
        reasons[key] = reasons.get(key, 0) + 1
    worst = max(reasons.items(), key=lambda kv: kv[1])
    return f"infeasible: {worst[0]} ({worst[1]} of {len(tables)} candidates)"


def best_per_family(problem: PlanningProblem, chosen: CandidateTable) -> list[Alternative]:
    families: dict[str, list[CandidateTable]] = {}
    for t in problem.tables:
        families.setdefault(t.costs.shape.family, []).append(t)
    out: list[Alternative] = []
    for family, tables in sorted(families.items()):
        if family == chosen.costs.shape.family:
            continue
        ranked = sorted(tables, key=lambda t: (_bounds(problem, t).objective_lb, t.index))
        best: tuple[int, CandidateTable, list[int]] | None = None
        for t in ranked:
            if best is not None and _bounds(problem, t).objective_lb > best[0]:
                break
            split = best_split(problem, t, cutoff=None if best is None else best[0])
            if split is not None and (best is None or split.objective < best[0]):
                best = (split.objective, t, split.boundaries)
        if best is None:
            out.append(Alternative(family, None, [], None, _why_infeasible(problem, tables)))
        else:
            out.append(Alternative(family, best[1], best[2], best[0] / OBJECTIVE_SCALE, ""))
    return out
