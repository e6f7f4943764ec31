"""The published error is the data's: docs/accuracy.md against the per-row predictions and the cards."""

from __future__ import annotations

import csv
import re
import statistics

import pytest

from solver.calibration.accuracy import (
    TARGETS_PCT,
    evaluate,
    leave_one_card_out_predictions,
    percentile,
)
from solver.calibration.measurements import METRIC_LABELS, ROLE_TEST, load_measured, role
from solver.calibration.parameters import card_params
from solver.inputs.condition import load_condition
from solver.render.condition_markdown import (
    HELD_OUT_ERROR_PCT,
    UNCALIBRATED_ERROR_PCT,
    assumptions_section,
)
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
    # each row is predicted on its own (the parameters come from every row's card): only the
    # held-out rows, which are all that is compared here
    predictions, _ = evaluate([r for r in rows if role(r) == ROLE_TEST], card_params(rows))
    for metric, (n, median, _) in published.items():
        errors = [p.error_pct for p in predictions
                  if p.role == ROLE_TEST and p.row.metric == metric]
        assert len(errors) == n, "docs/accuracy.md is stale: run python scripts/accuracy.py"
        assert statistics.median(errors) == pytest.approx(median, abs=0.06), (
            "docs/accuracy.md is stale: run python scripts/accuracy.py")
        assert median <= TARGETS_PCT[metric]  # issue 6: 15% throughput, 20% TTFT and ITL


def _published_loco() -> dict[str, tuple[int, float]]:
    """metric -> (rows, median) of the leave-one-card-out 'all' row of docs/accuracy.md."""
    text = (DOCS / "accuracy.md").read_text(encoding="utf-8")
    section = text.split("### Cards without measurements: leave-one-card-out", 1)[1]
    (line,) = [s for s in section.split("###", 1)[0].splitlines() if s.startswith("| **all** |")]
    cells = [c.strip() for c in line.strip("|").split("|")[1:]]
    out = {}
    for metric, cell in zip(METRIC_LABELS, cells, strict=True):
        m = re.match(r"([\d.]+)% / [\d.]+% \((\d+)\)", cell)
        assert m, cell
        out[metric] = (int(m.group(2)), float(m.group(1)))
    return out


def test_published_leave_one_card_out_errors_are_what_the_cards_give() -> None:
    """Each calibrated card predicted from the other cards' parameters (solver/calibration/transfer.py)."""
    rows, _ = load_measured()
    predictions = leave_one_card_out_predictions(rows, card_params(rows))
    for metric, (n, median) in _published_loco().items():
        errors = [p.error_pct for p in predictions if p.row.metric == metric]
        assert len(errors) == n, "docs/accuracy.md is stale: run python scripts/accuracy.py"
        assert statistics.median(errors) == pytest.approx(median, abs=0.06)


def test_plan_markdown_quotes_the_published_medians() -> None:
    """plan.md's assumptions quote docs/accuracy.md (rounded to whole percent)."""
    held = {METRIC_LABELS[m]: round(median) for m, (_, median, _) in _published_headline().items()}
    loco = {METRIC_LABELS[m]: round(median) for m, (_, median) in _published_loco().items()}
    assert held == HELD_OUT_ERROR_PCT
    assert loco == UNCALIBRATED_ERROR_PCT


def test_plan_markdown_flags_an_uncalibrated_card() -> None:
    """plan.md's assumptions say when the plan's card has no measurements, with the error to expect."""
    h800 = assumptions_section(load_condition(REPO / "conditions" / "deepseek-v3-h800x32.yaml"))
    assert "**Uncalibrated card (h800)**" in h800 and "leave-one-card-out" in h800
    h200 = assumptions_section(load_condition(REPO / "conditions" / "qwen3-235b-h200x8.yaml"))
    assert "Uncalibrated card" not in h200 and "This card (h200-sxm-141gb): Fitted" in h200
