"""Bounds every contiguous layer split of a candidate obeys, before any split is chosen.

The total work of a candidate does not depend on the split: each step kind's stage sum S is a
constant, and its slowest stage is at least the average stage and at least its extras plus one
layer (M >= max(ceil(S / pp), max extra + lightest layer)); the same holds for memory. Every metric
form has non-negative coefficients, so the form evaluated at these values bounds it from below.
Screening, the CP-SAT model's redundant constraints and the runner-up search share them.

Computed on one CandidateTable (integers) or on the TableGrid of every candidate (float arrays).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from solver.optimize.tables import CandidateTable, IntForm, TableGrid
from solver.physics.numeric import Num, ceil_div, vmax, vmin


@dataclass(frozen=True)
class Bounds:
    """Per step kind: the exact stage sum and a lower bound of the slowest stage; memory's."""

    sums: dict[str, Num]
    max_lb: dict[str, Num]
    memory_lb: Num  # weights, KV cache, workspace and overhead of the fullest stage
    weights_lb: Num  # the same without the KV cache
    microbatches: Num

    def form_lb(self, form: IntForm) -> Num:
        return form.value(self.sums, self.max_lb, self.microbatches)

    def form_reach(self, form: IntForm) -> Num:
        """The largest value the form can take in the CP-SAT model: every slowest stage at its
        variable's upper bound (the stage sum), every round at m times it."""
        return form.value(self.sums, self.sums, self.microbatches)


# The integer model's range (tables.REACH_LIMIT): a candidate whose objective or bounded metric can
# reach 2^52 units (at least ~10^4 times the roofline ideal objective) is outside the model, in
# CP-SAT and the oracle alike, so sums of a few thousand such terms stay within CP-SAT's 64-bit
# arithmetic.
OUT_OF_RANGE = "out_of_range"


def reach(t: CandidateTable | TableGrid, b: Bounds) -> Num:
    """The largest reach of the candidate's objective and of every metric an SLO bounds."""
    forms = [t.forms["objective"]] + [t.forms[f] for f, limit in t.limits.items() if limit is not None]
    return functools.reduce(vmax, [b.form_reach(f) for f in forms])


def _stage_bounds(per_kind: Sequence[Any], totals: list[int], extra_sum: Any, extra_max: Any,
                  pp: Any) -> tuple[Any, Any]:
    """(sum over the stages, lower bound of the largest stage) of one stage quantity."""
    layers = sum(c * n for c, n in zip(per_kind, totals, strict=True))
    lightest = functools.reduce(vmin, [c for c, n in zip(per_kind, totals, strict=True) if n])
    total = layers + extra_sum
    return total, vmax(ceil_div(total, pp), extra_max + lightest)


def table_bounds(t: CandidateTable, totals: list[int]) -> Bounds:
    """Bounds of one candidate (`totals`: layers of each kind in the model)."""
    sums, max_lb = {}, {}
    for step, stages in t.steps.items():
        sums[step], max_lb[step] = _stage_bounds(stages.per_kind, totals, sum(stages.extra),
                                                 max(stages.extra), t.pp)
    _, memory_lb = _stage_bounds(t.memory.per_kind, totals, sum(t.memory.extra), max(t.memory.extra),
                                 t.pp)
    _, weights_lb = _stage_bounds(t.weights.per_kind, totals, sum(t.weights.extra),
                                  max(t.weights.extra), t.pp)
    return Bounds(sums, max_lb, memory_lb, weights_lb, t.microbatches)


def grid_bounds(g: TableGrid, totals: list[int]) -> Bounds:
    """Bounds of every candidate at once (arrays)."""
    sums, max_lb = {}, {}
    for step, stages in g.steps.items():
        sums[step], max_lb[step] = _stage_bounds(stages.per_kind, totals, stages.extra_sum(g.pp),
                                                 stages.extra_max(g.pp), g.pp)
    _, memory_lb = _stage_bounds(g.memory.per_kind, totals, g.memory.extra_sum(g.pp),
                                 g.memory.extra_max(g.pp), g.pp)
    _, weights_lb = _stage_bounds(g.weights.per_kind, totals, g.weights.extra_sum(g.pp),
                                  g.weights.extra_max(g.pp), g.pp)
    return Bounds(sums, max_lb, memory_lb, weights_lb, g.microbatches)
