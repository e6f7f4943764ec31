"""The whole calibration, as `paraplan calibrate` runs it: load the measurements, fit on the
training rows, predict every usable row with the fitted and the uncalibrated parameters and every
fitted card's rows as if it had no measurements (leave-one-card-out, solver/calibration/transfer.py),
and the text summary the command prints.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from solver.calibration.accuracy import (
    TARGETS_PCT,
    ErrorStats,
    Prediction,
    evaluate,
    leave_one_card_out_predictions,
)
from solver.calibration.fit import FitResult, fit
from solver.calibration.measurements import (
    METRIC_LABELS,
    METRICS,
    ROLE_LEGACY,
    ROLE_TEST,
    ROLE_TRAIN,
    MeasuredRow,
    SkippedRow,
    default_measured,
    load_measured,
    role,
)
from solver.calibration.parameters import Params, baseline_params, params_table
from solver.calibration.transfer import Fitted, with_link_parameters
from solver.errors import InputError


@dataclass(frozen=True)
class CalibrationResult:
    source: str
    rows: list[MeasuredRow]
    skipped: list[SkippedRow]  # not usable: parsing, unsupported model, protocol, memory
    fit: FitResult
    predictions: list[Prediction]  # every usable row with the fitted parameters
    baseline: list[Prediction]  # the same rows with the uncalibrated defaults
    date: str
    loco: list[Prediction] = field(default_factory=list)  # fitted cards as if not measured

    @property
    def params(self) -> Params:
        return self.fit.params

    def held_out(self, metric: str) -> ErrorStats:
        return ErrorStats.of([p for p in self.predictions
                              if p.role == ROLE_TEST and p.row.metric == metric])

    def count(self, role_name: str) -> int:
        return sum(p.role == role_name for p in self.predictions)


def calibrate(path: Path | str | None = None, *,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Load (default: docs/calibration/measured.csv), fit on the training rows, evaluate every
    usable row (fitted and uncalibrated)."""
    path = default_measured() if path is None else Path(path)
    rows, skipped = load_measured(path)
    base = baseline_params(rows)
    baseline, unusable = evaluate(rows, base)
    usable_rows = [p.row for p in baseline]
    train = [r for r in usable_rows if role(r) == ROLE_TRAIN]
    if not train:
        raise InputError(str(path), "", "no usable training rows (see the skipped rows)")
    result = fit(train, base, progress=progress)
    fitted = Fitted.of(result.params, train)
    params = {**base, **{g: with_link_parameters(g, p, fitted) for g, p in result.params.items()}}
    predictions, _ = evaluate(usable_rows, params)
    return CalibrationResult(source=str(path), rows=usable_rows, skipped=skipped + unusable,
                             fit=replace(result, params=params), predictions=predictions,
                             baseline=baseline, date=today(),
                             loco=leave_one_card_out_predictions(usable_rows, params))


def today() -> str:
    return _dt.date.today().isoformat()


# ---- text report ---------------------------------------------------------------------------------


def summary_lines(result: CalibrationResult) -> list[str]:
    """What `paraplan calibrate` prints."""
    lines = [f"{len(result.rows)} usable rows ({result.count(ROLE_TRAIN)} fitted, "
             f"{result.count(ROLE_TEST)} held out, "
             f"{result.count(ROLE_LEGACY)} evaluated only), "
             f"{len(result.skipped)} not usable",
             f"fit: objective {result.fit.start_objective:.4f} -> {result.fit.objective:.4f} "
             f"({result.fit.rounds} rounds, {result.fit.rows} training rows)", ""]
    lines += params_table({g: p for g, p in result.params.items()
                           if any(r.gpu_card == g and role(r) == ROLE_TRAIN for r in result.rows)})
    lines += ["", "| metric | rows | median abs error | p90 | uncalibrated median | target | met |",
              "|---|---|---|---|---|---|---|"]
    for metric in METRICS:
        stats = result.held_out(metric)
        base = ErrorStats.of([p for p in result.baseline
                              if p.role == ROLE_TEST and p.row.metric == metric])
        target = TARGETS_PCT[metric]
        lines.append(f"| {METRIC_LABELS[metric]} (held-out) | {stats.n} | {stats.median:.1f}% | "
                     f"{stats.p90:.1f}% | {base.median:.1f}% | <= {target:.0f}% | "
                     f"{'yes' if stats.median <= target else 'NO'} |")
    loco = {m: ErrorStats.of([p for p in result.loco if p.row.metric == m]) for m in METRICS}
    lines += ["", "leave-one-card-out (each fitted card predicted from the others' fits): "
              + ", ".join(f"{METRIC_LABELS[m]} {s.median:.1f}%" for m, s in loco.items())]
    reasons: dict[str, int] = {}
    for s in result.skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    lines += ["", "not usable:"] + [f"  {n:4d}  {reason}" for reason, n in
                                    sorted(reasons.items(), key=lambda kv: -kv[1])]
    return lines
