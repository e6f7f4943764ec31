"""One evaluator: a calibration prediction is the very number plan.json reports (and `check` and the
verifier recompute) for the same condition, shape and load, to the last bit."""

from __future__ import annotations

import pytest

from solver.calibration.measurements import LOAD_OPEN, LOAD_STATIC, MeasuredRow
from solver.calibration.parameters import baseline_params
from solver.calibration.protocol import boundaries, predict, row_condition, row_load, row_shape
from solver.document.plan import Plan, SolverInfo, build_plan
from solver.document.verify import evaluate_plan_document
from solver.review.check import ShortPlan, check_given

INFO = SolverInfo(method="check", objective=None, best_bound=None, gap=None, candidates=0,
                  candidates_in_model=0, candidates_removed={})


def _reported(plan: Plan, row: MeasuredRow) -> float:
    """plan.json's field for the row's metric, in the calibration's units (tokens/s, s)."""
    m = plan.metrics
    return {"throughput": m.throughput_tokens_per_s, "ttft": m.ttft_ms / 1e3,
            "itl": m.tpot_ms / 1e3}[row.metric]


def test_every_prediction_is_the_number_plan_json_reports(sample) -> None:
    rows, _ = sample
    params = baseline_params(rows)
    kinds = set()
    for row in rows:
        cond = row_condition(row, params)
        load = row_load(row, cond)
        plan = build_plan(cond, row_shape(cond, row.tp), load, boundaries(cond), "checked", INFO)
        predicted = predict(row, params)
        expected = _reported(plan, row)
        # plan.json stores milliseconds: the prediction in ms is the very float it holds
        assert (predicted if row.metric == "throughput" else predicted * 1e3) == (
            expected if row.metric == "throughput" else expected * 1e3), row.index
        kinds.add(row.load)
        if row.load == LOAD_STATIC:  # `paraplan check` of a hand-made plan gives the same number
            short = ShortPlan(tp=row.tp, batch_size=int(row.load_value))
            checked = check_given(cond, short).plan
            assert checked is not None and _reported(checked, row) == expected
        if row.load == LOAD_OPEN:  # the verifier re-evaluates plan.json's serving block
            _, _, metrics = evaluate_plan_document(cond, plan)
            again = {"ttft": metrics.ttft_s, "itl": metrics.tpot_s}[row.metric]
            assert again == pytest.approx(predicted, rel=1e-12)  # utilization = active / slots
    assert kinds == {"max", "static", "closed", "open", "burst"}
