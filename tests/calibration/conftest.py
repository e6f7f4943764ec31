"""Fixtures of the calibration tests: the sample measurements, and a coarse fit for the command tests."""

from __future__ import annotations

import pytest

from solver.calibration import calibrate
from solver.calibration.measurements import MeasuredRow, SkippedRow, load_measured
from tests.calibration.sample import SAMPLE


@pytest.fixture(scope="module")
def sample() -> tuple[list[MeasuredRow], list[SkippedRow]]:
    return load_measured(SAMPLE)


@pytest.fixture
def fast_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """calibrate() fits with coarse steps: keeps the command tests fast."""
    real_fit = calibrate.fit

    def coarse(rows, start=None, **kwargs):
        kwargs["tolerance"] = 0.2
        return real_fit(rows, start, **kwargs)

    monkeypatch.setattr(calibrate, "fit", coarse)
