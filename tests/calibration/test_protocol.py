"""The measurement protocol: the shared cost model evaluated at the batch each load implies."""

from __future__ import annotations

import pytest

from solver.calibration.parameters import baseline_params
from solver.calibration.protocol import MAX_ENGINE_BATCH, max_batch, predict, row_condition, row_shape
from solver.physics.cost import CostModel
from solver.physics.evaluate import evaluate_plan, evaluate_stages
from tests.calibration.sample import row_at


def test_closed_loop_single_user_is_prefill_then_decode(sample) -> None:
    rows, _ = sample
    params = baseline_params(rows)
    ttft, itl, tput = (row_at(rows, i) for i in (35, 36, 37))
    cond = row_condition(ttft, params)
    _, _, m = evaluate_plan(cond, row_shape(cond, 2), 1, [0, 80])
    assert predict(ttft, params) == pytest.approx(m.ttft_s)
    assert predict(itl, params) == pytest.approx(m.tpot_s)
    assert predict(tput, params) == pytest.approx(500 / (m.ttft_s + 499 * m.tpot_s))


def test_max_load_uses_the_largest_batch_that_fits(sample) -> None:
    rows, _ = sample
    row = row_at(rows, 7)  # Llama-3.1-70B, 4 x H100, FP8, 128/128
    batch = max_batch(row)
    cond = row_condition(row)
    model, shape = CostModel(cond), row_shape(cond, 4)

    def memory(b: int) -> float:
        stages = evaluate_stages(model.candidate(shape, b), model.arch.layer_kinds, [0, 80])
        return max(s.memory_bytes for s in stages)

    limit = cond.cluster.usable_memory_bytes
    assert 1 < batch <= MAX_ENGINE_BATCH
    assert memory(batch) <= limit
    assert batch == MAX_ENGINE_BATCH or memory(batch + 1) > limit
    params = baseline_params(rows)
    _, _, m = evaluate_plan(row_condition(row, params), shape, batch, [0, 80])
    assert predict(row, params) == pytest.approx(m.throughput_tokens_per_s)
    # 70B FP8 on one H100 fits the engine's 0.9 x 79.65 GiB (the published run exists)
    assert predict(row_at(rows, 11), params) is not None


def test_moe_rows_split_experts_by_tp(sample) -> None:
    rows, _ = sample
    cond = row_condition(row_at(rows, 10))  # Mixtral-8x7B TP2: "MoE EP not stated (TP only)"
    shape = row_shape(cond, 2)
    assert (shape.tp, shape.etp, shape.ep) == (2, 2, 1)
