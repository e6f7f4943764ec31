"""The pool candidates the pairing can choose, found without pricing every operating point one
by one.

optimize/pools.py defines a pool's candidates: every operating point of every shape priced one by
one (`PoolEvaluator.evaluate`), kept when its KV capacity family holds and it meets its own SLO
part; a decode shape stops at its first operating point that does not fit. The pairing
(optimize/disaggregated.py) then chooses among the `undominated` ones only. `search_pool` finds
the same candidates with far fewer one-by-one evaluations:

1. every operating point is priced on the grid (optimize/pool_grid.py), whose numbers are within
   GRID_RTOL of the one-by-one ones;
2. whether it fits and meets its SLO part is read off the grid where the grid number is farther
   than GRID_RTOL from the limit; the others are priced one by one;
3. the decode shapes' stopping points follow from those verdicts, which gives every kept
   candidate and their number (plan.json's solver.candidates);
4. a kept candidate that another kept one of its GPU count beats whatever the exact numbers are
   (dominance.surely_beaten on the pairing's integer keys, as intervals around the grid numbers)
   is not undominated and is left out; the others are priced one by one.

So the list holds every undominated candidate, in the same order, with the one-by-one numbers:
`undominated` picks the same ones and CP-SAT sees the same model. Every candidate priced one by
one is checked against its grid numbers; should one be farther than GRID_RTOL / 2 (the premise of
steps 2 and 4), the search prices every operating point one by one instead and logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from solver.inputs.condition import Condition
from solver.optimize.disaggregated import disagg_table, key_columns
from solver.optimize.dominance import surely_beaten
from solver.optimize.pool_grid import GRID_RTOL, PoolGrid, PoolRows, pool_grid
from solver.optimize.pools import (
    DECODE,
    PoolCandidate,
    PoolEvaluator,
    Priced,
    decode_candidates,
    decode_loads,
    pool_evaluator,
    prefill_candidates,
    prefill_loads,
)
from solver.physics.disaggregation import kv_bytes_per_gpu

log = logging.getLogger(__name__)
METRICS = ("ttft_s", "ttft_mean_s", "tpot_s", "tpot_mean_s", "requests_per_s")


@dataclass(frozen=True)
class PoolSearch:
    """A pool's candidates for the pairing (every undominated one, in the full list's order) and
    how many the full list holds (those that fit and meet their own SLO part)."""

    pool: str
    candidates: list[PoolCandidate]
    num_candidates: int
    num_operating_points: int  # priced on the grid
    priced_one_by_one: int


def search_pool(condition: Condition, pool: str) -> PoolSearch:
    """The candidates of one pool (prefill | decode) the pairing can choose; see the module doc."""
    evaluator = pool_evaluator(condition, pool)
    rows, segment = operating_points(condition, evaluator)
    grid = pool_grid(evaluator.model, rows)
    priced: dict[int, Priced] = {}
    limit = evaluator.condition.cluster.usable_memory_bytes
    fits = _verdicts(evaluator, rows, priced, grid.memory_bytes, limit, 1.0, lambda p: p.fits)
    reached = _before_first_misfit(fits, segment) if pool == DECODE else np.ones(len(rows), dtype=bool)
    meets = _verdicts(evaluator, rows, priced, _slo_metric(grid, pool), evaluator.slo_limit_ms, 1e3,
                      lambda p: evaluator.meets_slo(p.metrics), among=reached & fits)
    kept = np.flatnonzero(reached & fits & meets)
    beaten = _surely_beaten(condition, evaluator, rows, grid, kept)
    chosen = kept[~beaten].tolist()
    for i in chosen:
        if i not in priced:
            priced[i] = evaluator.evaluate(rows.shape[i], rows.load(i))
    if not _grid_agrees(grid, priced, pool):
        log.warning("%s pool: a grid number is off its one-by-one value by more than %g; pricing every "
                    "operating point one by one", pool, GRID_RTOL / 2)
        full = decode_candidates(condition) if pool == DECODE else prefill_candidates(condition)
        return PoolSearch(pool, full, len(full), len(rows), len(rows))
    candidates = [evaluator.candidate(rows.shape[i], rows.load(i), priced[i]) for i in chosen]
    log.info("%s pool: %d operating points, %d candidates, %d priced one by one for the pairing",
             pool, len(rows), len(kept), len(priced))
    return PoolSearch(pool, candidates, len(kept), len(rows), len(priced))


def operating_points(condition: Condition, evaluator: PoolEvaluator) -> tuple[PoolRows, np.ndarray]:
    """Every operating point in the one-by-one order, and the index of each one's shape."""
    shapes, slots, util, chunk, segment = [], [], [], [], []
    for k, shape in enumerate(evaluator.shapes):
        loads = (decode_loads(condition, shape) if evaluator.pool == DECODE
                 else prefill_loads(condition, shape))
        for load in loads:
            shapes.append(shape)
            slots.append(load.slots)
            util.append(load.utilization)
            chunk.append(getattr(load, "chunk_tokens", 0))
            segment.append(k)
    rows = PoolRows(shapes, np.array(slots, dtype=np.int64), np.array(util, dtype=float),
                    None if evaluator.pool == DECODE else np.array(chunk, dtype=np.int64))
    return rows, np.array(segment, dtype=np.int64)


def _slo_metric(grid: PoolGrid, pool: str) -> np.ndarray:
    return grid.tpot_s if pool == DECODE else grid.ttft_s


def _verdicts(evaluator: PoolEvaluator, rows: PoolRows, priced: dict[int, Priced], values: np.ndarray,
              limit: float | None, scale: float, exact: Callable[[Priced], bool],
              among: np.ndarray | None = None) -> np.ndarray:
    """Whether values * scale <= limit, from the grid where it is farther than GRID_RTOL from the
    limit, else (for the rows `among`) from the one-by-one evaluation, `exact(priced)`."""
    if limit is None:
        return np.ones(len(rows), dtype=bool)
    finite = np.isfinite(values)
    within = finite & (values * (1 + GRID_RTOL) * scale <= limit)
    beyond = finite & (values * (1 - GRID_RTOL) * scale > limit)
    out = within.copy()
    unsure = ~(within | beyond) if among is None else ~(within | beyond) & among
    for i in np.flatnonzero(unsure).tolist():
        if i not in priced:
            priced[i] = evaluator.evaluate(rows.shape[i], rows.load(i))
        out[i] = exact(priced[i])
    return out


def _before_first_misfit(fits: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Rows no earlier row of the same shape fails to fit before (a decode shape's search stops
    at its first operating point that does not fit)."""
    misfits = np.cumsum(~fits) - ~fits  # misfits before each row, over all rows
    first = np.searchsorted(segment, segment)  # the first row of each row's shape
    return misfits - misfits[first] == 0


def _surely_beaten(condition: Condition, evaluator: PoolEvaluator, rows: PoolRows, grid: PoolGrid,
                   kept: np.ndarray) -> np.ndarray:
    """Of the kept rows, those another kept row of the same GPU count surely beats in the pairing's
    keys (the keys as intervals around the grid numbers); rows with a non-finite number stay."""
    table, link = disagg_table(condition, [], [])
    i = condition.workload.input_tokens
    kv = {s: kv_bytes_per_gpu(evaluator.model, s, i) for s in evaluator.shapes}
    values = {name: getattr(grid, name)[kept] for name in METRICS}
    usable = np.all([np.isfinite(v) for v in values.values()], axis=0) if len(kept) else np.zeros(0, bool)
    low = {k: v[usable] * (1 - GRID_RTOL) for k, v in values.items()}
    high = {k: v[usable] * (1 + GRID_RTOL) for k, v in values.items()}
    shapes = [rows.shape[r] for r in kept[usable].tolist()]
    kv_bytes = np.array([kv[s] for s in shapes], dtype=float)
    decode = evaluator.pool == DECODE
    lo = key_columns(table, link, high["requests_per_s"], low["ttft_s"], low["ttft_mean_s"],
                     low["tpot_mean_s"], kv_bytes, decode)
    hi = key_columns(table, link, low["requests_per_s"], high["ttft_s"], high["ttft_mean_s"],
                     high["tpot_mean_s"], kv_bytes, decode)
    gpus = np.array([s.gpus_used for s in shapes], dtype=np.int64)
    beaten = np.zeros(len(kept), dtype=bool)
    beaten[usable] = surely_beaten(lo, hi, gpus)
    return beaten


def _grid_agrees(grid: PoolGrid, priced: dict[int, Priced], pool: str) -> bool:
    """Every number of every row priced one by one within GRID_RTOL / 2 of the grid's."""
    for i, p in priced.items():
        pairs = [(grid.memory_bytes[i], p.memory_bytes)]
        pairs += [(getattr(grid, name)[i], getattr(p.metrics, name)) for name in METRICS
                  if pool == DECODE or not name.startswith("tpot")]
        for on_grid, exact in pairs:
            if on_grid == exact:
                continue
            if not (np.isfinite(on_grid) and abs(on_grid - exact) <= GRID_RTOL / 2 * abs(on_grid)):
                return False
    return True
