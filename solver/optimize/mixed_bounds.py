"""Bounds of a mixed replica for every load at once: what no layer split can beat.

For a template with stages s (per-layer time c_s of the stage's cheapest layer kind, extras e_s,
in ns) and L layers, any split with n_s >= 1 layers per stage has

    M >= max( max_s (c_s + e_s),  (L + sum_s e_s / c_s) / sum_s 1 / c_s )
    S >= sum_s (c_s + e_s) + (L - pp) min_s c_s

(the first: n_s <= (M - e_s) / c_s summed over the stages must reach L), so R = max(S, m M) is at
least max(S_lb, m M_lb) per step kind. Memory: stage s holds at most floor((limit_s - extra_s) /
smallest layer) layers, and the stages together must hold L. Every metric form is monotone in the
aggregates, so an SLO broken at the bounds is broken by every split. A load passes when memory and
every SLO pass at the bounds and its numbers stay inside the integer model (RANGE_LIMIT); its value
bound is replica_value at R_lb of the mix step. Exact screening: the value of a load that passes is
at most its bound, and a load that fails has no feasible split.
"""

from __future__ import annotations

import numpy as np

from solver.optimize.mixed_tables import (
    NS_PER_S,
    STEPS,
    VALUE_PER_TOKEN_S,
    MixedGrids,
    slo_limits,
)
from solver.physics.mixed import Template
from solver.physics.serving import MAX, SUM

EXCLUDED = -1
REACH_LIMIT = 2.0**60  # a limited form's largest value must stay far inside int64


def _step_bounds(grids: MixedGrids, template: Template, step: str, layers: int,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S_lb, M_lb, S_ub) of one step kind, every load."""
    pp = template.pp
    cheapest, dearest, extras = [], [], []
    for s, option in enumerate(template.stages):
        per_kind = grids.grid(option, pp).time[step]
        cheapest.append(np.maximum(np.minimum.reduce(per_kind), 1.0))
        dearest.append(np.maximum.reduce(per_kind))
        extras.append(grids.extra_time(template, s, step))
    c, e = np.array(cheapest), np.array(extras)
    balanced = np.ceil((layers + (e / c).sum(axis=0)) / (1.0 / c).sum(axis=0) - 1e-9)
    slowest = np.maximum((c + e).max(axis=0), balanced)
    total = (c + e).sum(axis=0) + (layers - pp) * c.min(axis=0)
    most = (np.array(dearest) * layers + e).sum(axis=0)
    return total, slowest, most


def _memory_ok(grids: MixedGrids, template: Template, layers: int) -> np.ndarray:
    capacity = 0.0
    ok = np.ones(len(grids.loads[template.pp]), dtype=bool)
    for s, option in enumerate(template.stages):
        g = grids.grid(option, template.pp)
        room = g.limit - grids.extra_memory(template, s)
        held = np.floor(np.maximum(room, -1.0) / np.maximum(np.minimum.reduce(g.memory), 1.0))
        ok &= held >= 1
        capacity = capacity + np.maximum(held, 0.0)
    return ok & (capacity >= layers)


def value_bounds(grids: MixedGrids, template: Template, layers: int) -> np.ndarray:
    """Per load of the template's depth: the value no split beats (milli-tokens/s), or EXCLUDED."""
    forms, spt, micro = grids.point_forms(template.pp)
    sums, maxima, reach = {}, {}, {}
    for step in STEPS:
        sums[step], maxima[step], reach[step] = _step_bounds(grids, template, step, layers)
    ok = _memory_ok(grids, template, layers)
    for name, limit in slo_limits(grids.cluster).items():
        if limit is None:
            continue
        form = forms[name]
        ok &= np.asarray(form.value(sums, maxima, micro) <= limit)
        largest = sum(np.asarray(c) * (micro * reach[x] if w not in (SUM, MAX) else reach[x])
                      for x, w, c in form.terms)
        ok &= np.asarray(largest < REACH_LIMIT)
    rounds = np.maximum(sums["mix"], micro * maxima["mix"])
    value = np.floor(VALUE_PER_TOKEN_S * NS_PER_S / (spt * rounds))
    return np.where(ok & np.isfinite(value), value, EXCLUDED).astype(np.int64)
