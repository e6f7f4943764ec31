"""Runner-ups: the best plan of each other parallel-shape family, and why it lost.

For every family (tp only, tp+pp, tp+ep, ...) the candidates are scanned in order of their lower
bound and split exactly (exhaustive.best_split), stopping once the bound passes the family's best.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.exhaustive import best_split
from solver.formulation import _bounds, bound_violation
from solver.limits import Deadline
from solver.problem import PlanningProblem
from solver.tables import OBJECTIVE_SCALE, CandidateTable


@dataclass(frozen=True)
class Alternative:
    family: str
    table: CandidateTable | None
    boundaries: list[int]
    objective: float | None  # unitless, as the optimizer sees it
    reason: str


REASON_TEXT = {
    "memory": "memory does not fit",
    "ttft_slo": "TTFT SLO missed",
    "tpot_slo": "TPOT SLO missed",
    "e2e_slo": "e2e SLO missed",
    "split": "no layer split meets memory and SLOs together",
}


def _why_infeasible(reasons: dict[str, int], total: int) -> str:
    worst = max(reasons.items(), key=lambda kv: kv[1])
    return f"infeasible: {REASON_TEXT[worst[0]]} ({worst[1]} of {total} candidates)"


def best_per_family(problem: PlanningProblem, chosen: CandidateTable,
                    deadline: Deadline | None = None) -> list[Alternative]:
    """The best plan of every family but the chosen one's; families not reached before the run's
    deadline say so."""
    families: dict[str, list[CandidateTable]] = {}
    for t in problem.tables:
        families.setdefault(t.costs.shape.family, []).append(t)
    out: list[Alternative] = []
    for family, tables in sorted(families.items()):
        if family == chosen.costs.shape.family:
            continue
        if deadline is not None and deadline.check("runner-up table"):
            out.append(Alternative(family, None, [], None, "not computed: --time-limit reached"))
            continue
        reasons: dict[str, int] = {}
        ranked = []
        for t in tables:
            b = _bounds(problem, t)
            reason = bound_violation(t, b)
            if reason is None:
                ranked.append((b.objective_lb, t.index, t))
            else:
                reasons[reason] = reasons.get(reason, 0) + 1
        ranked.sort(key=lambda item: item[:2])
        best: tuple[int, CandidateTable, list[int]] | None = None
        for lower_bound, _, t in ranked:
            if best is not None and lower_bound > best[0]:
                break
            split = best_split(problem, t, cutoff=None if best is None else best[0])
            if split is None:
                reasons["split"] = reasons.get("split", 0) + 1
            elif best is None or split.objective < best[0]:
                best = (split.objective, t, split.boundaries)
        if best is None:
            out.append(Alternative(family, None, [], None, _why_infeasible(reasons, len(tables))))
        else:
            out.append(Alternative(family, best[1], best[2], best[0] / OBJECTIVE_SCALE, ""))
    return out
