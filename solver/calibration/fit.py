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

# Physical ranges: fractions of the spec-sheet peaks, and a per-layer overhead of at most 100 us
# (3.2 ms per decode step of a 32-layer model: beyond that it would not be an overhead any more).
BOUNDS = {"mfu": (0.05, 1.0), "mbu": (0.05, 1.0), "overhead": (0.0, 100.0)}


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
    """One fitted number of one card: bandwidth utilization, per-layer overhead, or mfu."""

    name: str  # "mbu" | "overhead" | "mfu"
    gpu: str
    precision: str = ""

    def get(self, params: Params) -> float:
        p = params[self.gpu]
        if self.name == "overhead":
            return p.layer_overhead_us
        if self.name == "mbu":
            return p.memory_bandwidth_utilization
        return p.mfu[self.precision]

    def set(self, params: Params, value: float) -> Params:
        lo, hi = BOUNDS[self.name]
        value = min(max(value, lo), hi)
        p = params[self.gpu]
        if self.name == "overhead":
            p = replace(p, layer_overhead_us=value)
        elif self.name == "mbu":
            p = replace(p, memory_bandwidth_utilization=value)
        else:
            p = replace(p, mfu={**p.mfu, self.precision: value})
        return {**params, self.gpu: p}

    def trials(self, value: float, step: float) -> tuple[float, float]:
        """Fractions move by factors exp(+-step), the overhead by +-50 us x step."""
        if self.name == "overhead":
            return value + 50 * step, value - 50 * step
        return value * math.exp(step), value * math.exp(-step)


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
    coords: list[_Coordinate] = []
    for g in gpus:
        coords += [_Coordinate("mbu", g), _Coordinate("overhead", g)]
        coords += [_Coordinate("mfu", g, p) for p in sorted({r.precision for r in by_gpu[g]})]
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
