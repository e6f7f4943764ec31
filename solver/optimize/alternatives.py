"""Runner-ups: the best plan of each other parallel-shape family, and why it lost; and the nearest
rivals inside the chosen plan's own family (TP8 x DP1 and TP2 x DP4 beside a TP4 x DP2 winner).

For every family (tp only, tp+pp, tp+ep, ...) or shape the candidates are scanned in order of their
lower bound (the screening's vectorized bounds) and split exactly (exhaustive.best_split), stopping
once the bound passes the group's best; ties go to the lowest candidate index
(planning/runner_ups.py evaluates each against the chosen plan).
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.optimize.bounds import OUT_OF_RANGE
from solver.optimize.exhaustive import best_split, split_cells
from solver.optimize.families import FAMILIES
from solver.optimize.problem import PlanningProblem
from solver.optimize.screening import Classification, classify, objective_bound
from solver.optimize.tables import OBJECTIVE_SCALE, CandidateTable
from solver.physics.shapes import ParallelShape
from solver.runtime.limits import Deadline


@dataclass(frozen=True)
class Alternative:
    family: str
    table: CandidateTable | None
    boundaries: list[int]
    objective: float | None  # unitless, as the optimizer sees it
    reason: str


# pp x (L + 1)^2 cells of one DP pass of an exact split; beyond it the family is not searched (a
# work count, not wall time: a 126-layer model on 16 stages is 260k)
MAX_SPLIT_CELLS = 2_000_000
MAX_RIVALS = 3  # other shapes of the chosen family shown: the closest by objective

REASON_TEXT = {f.reason: f.runner_up for f in FAMILIES} | {
    "split": "no layer split meets memory and SLOs together",
    OUT_OF_RANGE: "beyond the integer model's range"}


def _why_infeasible(reasons: dict[str, int], total: int) -> str:
    worst = max(reasons.items(), key=lambda kv: kv[1])
    return f"infeasible: {REASON_TEXT[worst[0]]} ({worst[1]} of {total} candidates)"


def best_per_family(problem: PlanningProblem, chosen_family: str,
                    deadline: Deadline | None = None) -> list[Alternative]:
    """The best plan of every family but the chosen one; families not reached before the run's
    deadline say so."""
    verdict = classify(problem)
    family_of_shape = [shape.family for shape in problem.shapes]
    families: dict[str, list[int]] = {}
    for i, shape_index in enumerate(problem.candidates.shape_index.tolist()):
        families.setdefault(family_of_shape[shape_index], []).append(i)
    out: list[Alternative] = []
    for family, indices in sorted(families.items()):
        if family == chosen_family:
            continue
        out.append(_best_of_family(problem, family, indices, verdict, deadline))
    return out


def nearest_rivals(problem: PlanningProblem, chosen: ParallelShape, deadline: Deadline | None = None,
                   limit: int = MAX_RIVALS) -> list[Alternative]:
    """The best plan of the `limit` other shapes of the chosen plan's family whose plans come
    closest to it (lowest objective). Shapes are taken in increasing order of their smallest
    objective bound, and the scan stops once that bound passes the `limit`-th best plan found."""
    verdict = classify(problem)
    rivals = {k for k, shape in enumerate(problem.shapes)
              if shape != chosen and shape.family == chosen.family}
    by_shape: dict[ParallelShape, list[int]] = {}
    for i, shape_index in enumerate(problem.candidates.shape_index.tolist()):
        if shape_index in rivals and verdict.reasons[i] is None:
            by_shape.setdefault(problem.shapes[shape_index], []).append(i)
    order = sorted(by_shape, key=lambda s: (min(verdict.objective_lb[i] for i in by_shape[s]), s))
    found: list[Alternative] = []
    unit = OBJECTIVE_SCALE * problem.table_grid().form_scale  # integer units per objective unit
    for shape in order:
        bound = min(verdict.objective_lb[i] - verdict.slack[i] for i in by_shape[shape])
        if len(found) >= limit and bound > (found[limit - 1].objective or 0.0) * unit:
            break
        best = _best_of_family(problem, shape.label, by_shape[shape], verdict, deadline)
        if best.objective is not None:
            found = sorted([*found, best], key=lambda a: (a.objective, a.family))
    return found[:limit]


def _best_of_family(problem: PlanningProblem, family: str, indices: list[int],
                    verdict: Classification, deadline: Deadline | None) -> Alternative:
    """Candidates in increasing order of their bound, split exactly; ties go to the lowest index."""
    reasons: dict[str, int] = {}
    for i in indices:
        reason = verdict.reasons[i]
        if reason is not None:
            reasons[reason] = reasons.get(reason, 0) + 1
    ranked = sorted((i for i in indices if verdict.reasons[i] is None),
                    key=lambda i: (verdict.objective_lb[i], i))
    best: tuple[int, int, CandidateTable, list[int]] | None = None  # objective, index, table, split
    for i in ranked:
        if best is not None and verdict.objective_lb[i] - verdict.slack[i] > best[0]:
            break
        if deadline is not None and deadline.check("runner-up table"):
            return Alternative(family, None, [], None, "not computed: --time-limit reached")
        t = problem.table(i)
        if split_cells(problem, t.pp) > MAX_SPLIT_CELLS:
            return Alternative(family, None, [], None, f"not computed: an exact split of "
                               f"{problem.num_layers} layers over {t.pp} stage(s) is beyond this "
                               "table's size limit")
        if best is not None and objective_bound(problem, t) > best[0]:
            continue
        split = best_split(problem, t, cutoff=None if best is None else best[0])
        if split is None:
            reasons["split"] = reasons.get("split", 0) + 1
        elif best is None or (split.objective, i) < best[:2]:
            best = (split.objective, i, t, split.boundaries)
    if best is None:
        return Alternative(family, None, [], None, _why_infeasible(reasons, len(indices)))
    return Alternative(family, best[2], best[3], best[0] / (OBJECTIVE_SCALE * best[2].form_scale), "")
