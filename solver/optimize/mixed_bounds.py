"""Bounds of a mixed replica for every load at once: what no layer split can beat.

For a template with stages s (per-layer time c_s of the stage's cheapest layer kind, extras e_s,
in ns) and L layers, any split with n_s >= 1 layers per stage has

    M >= max( max_s (c_s + e_s),  (L + sum_s e_s / c_s) / sum_s 1 / c_s )
    S >= sum_s (c_s + e_s) + (L - pp) min_s c_s

(the first: n_s <= (M - e_s) / c_s summed over the stages must reach L), so R = max(S, m M) is at
least max(S_lb, m M_lb) per step kind. Memory: stage s holds at most floor((limit_s - extra_s) /
smallest layer) layers, and the stages together must hold L. Every metric form is monotone in the
aggregates, so an SLO broken at the bounds is broken by every split. A load passes when memory and
every SLO pass at the bounds and its numbers stay inside the integer model (REACH_LIMIT); its value
bound is replica_value at R_lb of the mix step. Exact screening: the value of a load that passes is
at most its bound, and a load that fails has no feasible split.

A stage's arrays depend only on its option, the depth and its position (first, last, the link
after it), so they are computed once per such key and a template's bounds are sums of them.
"""

from __future__ import annotations

from dataclasses import dataclass

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


FIELDS = {"c": "cheapest", "i": "inverse", "e": "extra_per_layer", "o": "one_layer", "l": "largest"}


@dataclass(frozen=True)
class StageBound:
    """One stage's arrays over the loads: per step the cheapest layer c, 1 / c, e / c, c + e and
    the largest stage time (every layer at the dearest kind); the layers its memory can hold."""

    cheapest: dict[str, np.ndarray]
    inverse: dict[str, np.ndarray]
    extra_per_layer: dict[str, np.ndarray]
    one_layer: dict[str, np.ndarray]
    largest: dict[str, np.ndarray]
    holds: np.ndarray


class BoundCache:
    def __init__(self, grids: MixedGrids, layers: int) -> None:
        self.grids, self.layers = grids, layers
        self._rows: dict[int, dict[tuple[object, ...], int]] = {}
        self._stages: dict[int, list[StageBound]] = {}
        self._tables: dict[int, dict[tuple[str, str], np.ndarray]] = {}

    def index(self, template: Template, s: int) -> int:
        """The row of stage `s` of `template` in its depth's table (built on first use)."""
        key = (template.stages[s], template.pp, s == 0, s == template.pp - 1,
               template.crosses_pools(s), template.run_gpus(s))
        rows = self._rows.setdefault(template.pp, {})
        if key not in rows:
            rows[key] = len(rows)
            self._stages.setdefault(template.pp, []).append(self._build(template, s))
            self._tables.pop(template.pp, None)
        return rows[key]

    def table(self, pp: int) -> dict[tuple[str, str], np.ndarray]:
        """Every stage row of depth `pp` stacked per field and step: (rows x loads) arrays."""
        if pp not in self._tables:
            records = self._stages[pp]
            table = {(f, step): np.stack([getattr(r, name)[step] for r in records])
                     for f, name in FIELDS.items() for step in STEPS}
            table[("h", "")] = np.stack([r.holds for r in records])
            self._tables[pp] = table
        return self._tables[pp]

    def _build(self, template: Template, s: int) -> StageBound:
        g = self.grids.grid(template.stages[s], template.pp)
        arrays: dict[str, dict[str, np.ndarray]] = {n: {} for n in ("c", "i", "e", "o", "l")}
        for step in STEPS:
            c = np.maximum(np.minimum.reduce(g.time[step]), 1.0)
            e = self.grids.extra_time(template, s, step)
            arrays["c"][step], arrays["i"][step], arrays["e"][step] = c, 1.0 / c, e / c
            arrays["o"][step] = c + e
            arrays["l"][step] = np.maximum.reduce(g.time[step]) * self.layers + e
        room = g.limit - self.grids.extra_memory(template, s)
        holds = np.floor(np.maximum(room, -1.0) / np.maximum(np.minimum.reduce(g.memory), 1.0))
        return StageBound(arrays["c"], arrays["i"], arrays["e"], arrays["o"], arrays["l"], holds)


def _aggregates(stages: list[dict[str, np.ndarray]], layers: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S_lb, M_lb, S_ub) of one step kind, every (template, load); `stages` holds each stage's
    arrays by field (c, i, e, o, l: see StageBound)."""
    inverse = sum(b["i"] for b in stages)
    per_layer = sum(b["e"] for b in stages)
    balanced = np.ceil((layers + per_layer) / inverse - 1e-9)
    slowest = np.maximum(np.maximum.reduce([b["o"] for b in stages]), balanced)
    cheapest = np.minimum.reduce([b["c"] for b in stages])
    total = sum(b["o"] for b in stages) + (layers - len(stages)) * cheapest
    return total, slowest, sum(b["l"] for b in stages)


CHUNK = 512  # templates per numpy batch


def _batch(cache: BoundCache, templates: list[Template]) -> np.ndarray:
    """Value bounds of templates of one depth: a (templates x loads) array."""
    layers, grids, pp = cache.layers, cache.grids, templates[0].pp
    forms, spt, micro = grids.point_forms(pp)
    index = np.array([[cache.index(t, s) for s in range(pp)] for t in templates])
    table = cache.table(pp)
    sums, maxima, reach = {}, {}, {}
    for step in STEPS:
        stages = [{f: table[(f, step)][index[:, s]] for f in FIELDS} for s in range(pp)]
        sums[step], maxima[step], reach[step] = _aggregates(stages, layers)
    holds = [table[("h", "")][index[:, s]] for s in range(pp)]
    ok = (np.minimum.reduce(holds) >= 1) & (sum(np.maximum(h, 0.0) for h in holds) >= layers)
    for name, limit in slo_limits(grids.cluster).items():
        if limit is None:
            continue
        form = forms[name]
        ok &= np.asarray(form.value(sums, maxima, micro) <= limit)
        largest = sum(np.asarray(c) * (micro * reach[x] if w not in (SUM, MAX) else reach[x])
                      for x, w, c in form.terms)
        ok &= np.asarray(largest < REACH_LIMIT)
    rounds = np.maximum(sums["mix"], micro * maxima["mix"])
    with np.errstate(divide="ignore", over="ignore"):
        value = np.floor(VALUE_PER_TOKEN_S * NS_PER_S / (spt * rounds))
    return np.where(ok & np.isfinite(value), value, EXCLUDED).astype(np.int64)


def value_bounds(cache: BoundCache, templates: list[Template]) -> list[np.ndarray]:
    """Per template, per load of its depth: the value no split beats (milli-tokens/s), or
    EXCLUDED. Templates of one depth go through numpy together, CHUNK at a time."""
    out: list[np.ndarray | None] = [None] * len(templates)
    by_depth: dict[int, list[int]] = {}
    for i, t in enumerate(templates):
        by_depth.setdefault(t.pp, []).append(i)
    for indexes in by_depth.values():
        for i in indexes:  # every stage row first, so each depth's table is stacked once
            for s in range(templates[i].pp):
                cache.index(templates[i], s)
        for start in range(0, len(indexes), CHUNK):
            part = indexes[start:start + CHUNK]
            for i, row in zip(part, _batch(cache, [templates[i] for i in part]), strict=True):
                out[i] = row
    return [row for row in out if row is not None]
