"""The proportional-split heuristic the reports compare against (issue 16): every template's
layers split in proportion to each stage's compute (tp x the card's peak at the compute precision
x its mfu; largest remainders, at least one layer per stage), its best load for that fixed split,
and the best replica counts of those values (the same counts model as the optimum). Its value is
never above the optimum's: the same templates, loads and counts with one split each."""

from __future__ import annotations

from solver.optimize.mixed_bounds import EXCLUDED
from solver.optimize.mixed_search import MixedProblem, Settled, loads_by_bound
from solver.optimize.mixed_tables import replica_table, replica_value, split_values
from solver.physics.mixed import Template
from solver.runtime.limits import Deadline

PROPORTIONAL = "proportional"


def stage_compute(problem: MixedProblem, template: Template) -> list[float]:
    """FLOP/s of each stage: tp x peak x mfu of its pool's card."""
    out = []
    for option in template.stages:
        cond = problem.cluster.pools[option.pool].condition
        peak = cond.cluster.gpu.peak_flops(cond.compute_precision) or 0.0
        out.append(option.tp * peak * cond.cluster.mfu)
    return out


def proportional_boundaries(num_layers: int, weights: list[float]) -> list[int]:
    """Layers in proportion to `weights` (largest remainders; ties to the earlier stage), each
    stage at least one layer."""
    pp, total = len(weights), sum(weights)
    spare = num_layers - pp
    shares = [spare * w / total for w in weights]
    counts = [1 + int(s) for s in shares]
    order = sorted(range(pp), key=lambda s: (-(shares[s] - int(shares[s])), s))
    for s in order[: num_layers - sum(counts)]:
        counts[s] += 1
    bounds = [0]
    for c in counts:
        bounds.append(bounds[-1] + c)
    return bounds


def settle_proportional(problem: MixedProblem, t: int, deadline: Deadline | None = None) -> Settled:
    template = problem.templates[t]
    bounds = proportional_boundaries(problem.layers.num_layers, stage_compute(problem, template))
    counts = [problem.layers.counts(bounds[s], bounds[s + 1]) for s in range(template.pp)]
    best = Settled(EXCLUDED)
    for i in loads_by_bound(problem, t):
        if problem.bounds[t][i] <= best.value:
            break
        table = replica_table(problem.grids, template, i)
        ok, aggregates = split_values(table, counts)
        if not ok:
            continue
        value = replica_value(table.spt_coefficient, aggregates["round_mix"])
        if value > best.value:
            best = Settled(value, i, tuple(bounds), aggregates["round_mix"])
    return best
