"""One evaluator: a calibration prediction is the very number plan.json reports (and `check` and the
verifier recompute) for the same condition, shape and load, to the last bit."""

from __future__ import annotations

import copy

import pytest
import yaml

from solver.calibration.card_writer import card_text
from solver.calibration.measurements import LOAD_OPEN, LOAD_STATIC, MeasuredRow
from solver.calibration.parameters import GpuParams, baseline_params
from solver.calibration.protocol import boundaries, predict, row_condition, row_load, row_shape
from solver.document.building import build_plan
from solver.document.plan import Plan, SolverInfo
from solver.document.verify import evaluate_plan_document
from solver.inputs.card_library import bundled_folder
from solver.inputs.condition import build_condition
from solver.physics.evaluate import evaluate_plan
from solver.review.check import ShortPlan, check_given
from tests.calibration.sample import row_at

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


def test_fitted_parameters_act_as_the_card_they_are_written_into(sample) -> None:
    """row_condition(row, params) is the condition of a user whose card carries those values."""
    rows, _ = sample
    params = GpuParams(0.7, 12.5, {"fp8": 0.45, "bf16": 0.5}, 7.5, 0.6)  # as the card rounds them
    for index in (7, 28, 35):  # H100: TP4 fp8 max-load, TP4 bf16 Poisson, TP2 fp8 closed loop
        row = row_at(rows, index)
        fitted = row_condition(row, {row.gpu_card: params})
        original = (bundled_folder("GPU") / f"{row.gpu_card}.yaml").read_text(encoding="utf-8")
        data = copy.deepcopy(fitted.raw)
        data["hardware"]["gpu"] = yaml.safe_load(card_text(original, params, "note"))
        written = build_condition(data, "written card", "written card")
        load, shape = row_load(row, fitted), row_shape(fitted, row.tp)
        assert (evaluate_plan(written, shape, load, boundaries(written))[2]
                == evaluate_plan(fitted, shape, load, boundaries(fitted))[2])
