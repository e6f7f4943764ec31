"""How right the predictions are: every row predicted with given parameters, absolute percentage
errors, percentiles and error tables, the held-out targets of issue 6, and the leave-one-card-out
predictions (each fitted card as if it had no measurements).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from solver.calibration.measurements import ROLE_TRAIN, MeasuredRow, SkippedRow, role
from solver.calibration.parameters import Params
from solver.calibration.protocol import predict
from solver.calibration.transfer import Fitted, leave_one_card_out


@dataclass(frozen=True)
class Prediction:
    row: MeasuredRow
    predicted: float
    role: str

    @property
    def ratio(self) -> float:
        return self.predicted / self.row.measured

    @property
    def error_pct(self) -> float:
        return abs_pct_error(self.predicted, self.row.measured)


def evaluate(rows: Iterable[MeasuredRow],
             params: Params) -> tuple[list[Prediction], list[SkippedRow]]:
    """Predict every row; rows the modelled memory cannot hold come back as skipped."""
    out: list[Prediction] = []
    unusable: list[SkippedRow] = []
    for row in rows:
        value = predict(row, params)
        if value is None:
            unusable.append(SkippedRow(row.index, row.model, row.gpu, row.metric,
                                       "does not fit the modelled memory (weights + runtime "
                                       "overhead exceed the usable memory of the card)"))
        else:
            out.append(Prediction(row, value, role(row)))
    return out, unusable


def leave_one_card_out_predictions(rows: Sequence[MeasuredRow],
                                   params: Params) -> list[Prediction]:
    """Every fitted card's rows (current engines) predicted with the parameters transfer() gives
    it from the other fitted cards: the expected error of a card without measurements."""
    fitted = Fitted.of(params, [r for r in rows if role(r) == ROLE_TRAIN])
    out: list[Prediction] = []
    for gpu, moved in leave_one_card_out(fitted).items():
        mine, _ = evaluate([r for r in rows if r.gpu_card == gpu and not r.legacy],
                           {**params, gpu: moved})
        out += mine
    return out


def abs_pct_error(predicted: float, measured: float) -> float:
    return abs(predicted / measured - 1) * 100


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class ErrorStats:
    n: int
    median: float  # absolute percentage error
    p90: float
    bias: float  # median of predicted / measured

    @classmethod
    def of(cls, predictions: Sequence[Prediction]) -> ErrorStats:
        errors = [p.error_pct for p in predictions]
        return cls(len(errors), percentile(errors, 50), percentile(errors, 90),
                   percentile([p.ratio for p in predictions], 50))


def error_table(predictions: Sequence[Prediction], key: Callable[[Prediction], str]
                ) -> dict[tuple[str, str], ErrorStats]:
    """(group, metric) -> error statistics."""
    groups: dict[tuple[str, str], list[Prediction]] = {}
    for p in predictions:
        groups.setdefault((key(p), p.row.metric), []).append(p)
    return {k: ErrorStats.of(v) for k, v in sorted(groups.items())}


TARGETS_PCT = {"throughput": 15.0, "ttft": 20.0, "itl": 20.0}  # issue 6: held-out median
