"""Fitting the calibration parameters (solver.calibration.parameters) on the training rows: the
objective (metric-weighted absolute log error of the protocol's predictions) and a deterministic
pattern search within physical bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from solver.calibration.measurements import MeasuredRow
from solver.calibration.parameters import Params, baseline_params
from solver.calibration.protocol import predict

# Physical ranges: fractions of the spec-sheet peaks, a per-layer overhead of at most 100 us (3.2 ms
# per decode step of a 32-layer model: beyond that it would not be an overhead any more), and a
# collective latency of at most 50 us per hop (NCCL's small-message latency across PCIe switches is
# tens of us; NVLink custom all-reduce a few).
BOUNDS = {"mfu": (0.05, 1.0), "mbu": (0.05, 1.0), "overhead": (0.0, 100.0), "alpha": (0.0, 50.0),
          "link": (0.05, 1.0)}
# GpuParams attribute of each coordinate, and the additive step (per unit of the search step) of
# those that move by addition; fractions move by factors exp(+-step)
_FIELDS = {"mbu": "memory_bandwidth_utilization", "overhead": "layer_overhead_us",
           "alpha": "collective_latency_us", "link": "link_bandwidth_utilization"}
_ADDITIVE = {"overhead": 50.0, "alpha": 10.0}


def _log_error(predicted: float | None, measured: float) -> float:
    if predicted is None or not predicted > 0:
        return math.inf
    return abs(math.log(predicted / measured))


def metric_weights(rows: Sequence[MeasuredRow]) -> dict[str, float]:
    """Each metric weighs the same in total (the many max-throughput rows must not drown the
    latency rows): a row of metric m weighs 1 / (number of rows of m)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.metric] = counts.get(row.metric, 0) + 1
    return {m: 1 / n for m, n in counts.items()}


def objective(rows: Sequence[MeasuredRow], params: Params,
              weights: dict[str, float] | None = None) -> float:
    """Weighted sum of absolute log errors |ln(predicted / measured)| (the fit minimizes it)."""
    weights = weights or metric_weights(rows)
    return sum(weights[r.metric] * _log_error(predict(r, params), r.measured) for r in rows)


@dataclass(frozen=True)
class _Coordinate:
    """One fitted number of one card: mfu of a precision, or a GpuParams field (BOUNDS keys)."""

    name: str  # "mfu" | "mbu" | "overhead" | "alpha" | "link"
    gpu: str
    precision: str = ""

    def get(self, params: Params) -> float:
        p = params[self.gpu]
        return p.mfu[self.precision] if self.name == "mfu" else getattr(p, _FIELDS[self.name])

    def set(self, params: Params, value: float) -> Params:
        lo, hi = BOUNDS[self.name]
        value = min(max(value, lo), hi)
        p = params[self.gpu]
        if self.name == "mfu":
            p = replace(p, mfu={**p.mfu, self.precision: value})
        else:
            p = replace(p, **{_FIELDS[self.name]: value})
        return {**params, self.gpu: p}

    def trials(self, value: float, step: float) -> tuple[float, float]:
        """Fractions move by factors exp(+-step), times by +-(50 or 10 us) x step."""
        if self.name in _ADDITIVE:
            return value + _ADDITIVE[self.name] * step, value - _ADDITIVE[self.name] * step
        return value * math.exp(step), value * math.exp(-step)


def coordinates(rows: Sequence[MeasuredRow]) -> list[_Coordinate]:
    """What the rows can pin, per card: bandwidth, overhead and the mfu of every precision
    measured; collective latency and link bandwidth where the rows include TP > 1."""
    coords: list[_Coordinate] = []
    for g in sorted({r.gpu_card for r in rows}):
        mine = [r for r in rows if r.gpu_card == g]
        coords += [_Coordinate("mbu", g), _Coordinate("overhead", g)]
        coords += [_Coordinate("mfu", g, p) for p in sorted({r.precision for r in mine})]
        if any(r.tp > 1 for r in mine):
            coords += [_Coordinate("alpha", g), _Coordinate("link", g)]
    return coords


@dataclass(frozen=True)
class FitResult:
    params: Params
    objective: float  # on the fitted rows
    start_objective: float  # the same rows with the uncalibrated defaults
    rounds: int
    rows: int


def fit(rows: Sequence[MeasuredRow], start: Params | None = None, *,
        progress: Callable[[str], None] | None = None, tolerance: float = 0.01,
        max_rounds: int = 80) -> FitResult:
    """Fit every card's parameters on the rows given (the caller passes the training rows).

    Deterministic pattern search from the uncalibrated defaults: each coordinate in turn tries a
    step up and a step down and keeps the first that lowers the objective; when no coordinate
    improves, the step halves, until it is below `tolerance`. The objective separates by card, so
    a card's coordinate re-predicts only that card's rows. Rows whose configuration does not fit
    the modelled memory are left out (they have no prediction)."""
    start = start or baseline_params(rows)
    usable = [r for r in rows if predict(r, start) is not None]
    weights = metric_weights(usable)
    gpus = sorted({r.gpu_card for r in usable})
    by_gpu = {g: [r for r in usable if r.gpu_card == g] for g in gpus}
    params: Params = {g: start[g] for g in gpus}
    coords = coordinates(usable)
    err = {g: objective(by_gpu[g], params, weights) for g in gpus}
    first = sum(err.values())
    step, rounds = math.log(2.0), 0
    while step >= tolerance and rounds < max_rounds:
        rounds += 1
        improved = False
        for c in coords:
            here = c.get(params)
            for value in c.trials(here, step):
                trial = c.set(params, value)
                if c.get(trial) == here:
                    continue
                new = objective(by_gpu[c.gpu], trial, weights)
                if new < err[c.gpu] - 1e-12:
                    params, err[c.gpu], improved = trial, new, True
                    break
        if progress:
            progress(f"round {rounds}: step {step:.3f}, objective {sum(err.values()):.4f}")
        if not improved:
            step /= 2
    return FitResult(params=params, objective=sum(err.values()), start_objective=first,
                     rounds=rounds, rows=len(usable))
