"""The published error is the data's: docs/accuracy.md against the per-row predictions and the cards."""

from __future__ import annotations

import csv
import re
import statistics

import pytest

from solver.calibration.accuracy import TARGETS_PCT, evaluate, percentile
from solver.calibration.measurements import METRIC_LABELS, ROLE_TEST, load_measured
from solver.calibration.parameters import card_params
from tests.paths import REPO

DOCS = REPO / "docs"


def _published_headline() -> dict[str, tuple[int, float, float]]:
    """metric -> (rows, median, p90) from the held-out table of docs/accuracy.md."""
    text = (DOCS / "accuracy.md").read_text(encoding="utf-8")
    out = {}
    for metric, label in METRIC_LABELS.items():
        m = re.search(rf"^\| {re.escape(label)} \| (\d+) \| \*\*([\d.]+)%\*\* \| ([\d.]+)%",
                      text, re.MULTILINE)
        assert m, f"no held-out line for {label} in docs/accuracy.md"
        out[metric] = (int(m.group(1)), float(m.group(2)), float(m.group(3)))
    return out


def test_published_held_out_errors_match_the_per_row_predictions() -> None:
    published = _published_headline()
    with (DOCS / "accuracy.csv").open(encoding="utf-8") as handle:
        lines = [r for r in csv.DictReader(handle) if r["role"] == ROLE_TEST]
    for metric, (n, median, p90) in published.items():
        errors = [abs(float(r["predicted"]) / float(r["measured"]) - 1) * 100
                  for r in lines if r["metric"] == metric]
        assert len(errors) == n
        assert statistics.median(errors) == pytest.approx(median, abs=0.06)
        assert percentile(errors, 90) == pytest.approx(p90, abs=0.06)


def test_published_held_out_errors_are_what_the_cards_predict_today() -> None:
    """Re-predict every held-out row with the cards' parameters and the current cost model."""
    published = _published_headline()
    rows, _ = load_measured()  # docs/calibration/measured.csv
    predictions, _ = evaluate(rows, card_params(rows))
    for metric, (n, median, _) in published.items():
        errors = [p.error_pct for p in predictions
                  if p.role == ROLE_TEST and p.row.metric == metric]
        assert len(errors) == n, "docs/accuracy.md is stale: run python scripts/accuracy.py"
        assert statistics.median(errors) == pytest.approx(median, abs=0.06), (
            "docs/accuracy.md is stale: run python scripts/accuracy.py")
        assert median <= TARGETS_PCT[metric]  # issue 6: 15% throughput, 20% TTFT and ITL
