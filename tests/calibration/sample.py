"""tests/assets/calibration_sample.csv: 50 rows copied verbatim from docs/calibration/measured.csv
(data rows 0-6, 12, 13, 46, 95, 96, 99, 248, 373-376, 493-504, 513-516, 585-587, 661, 669, 673, 693,
700, 701, 726, 739-741, 751-753); the expected mappings in these tests were read off those rows by
hand. Row indices below are the sample's own 0-based data rows."""

from __future__ import annotations

from solver.calibration.measurements import MeasuredRow
from tests.paths import ASSETS

SAMPLE = ASSETS / "calibration_sample.csv"


def row_at(rows: list[MeasuredRow], index: int) -> MeasuredRow:
    (row,) = [r for r in rows if r.index == index]
    return row
