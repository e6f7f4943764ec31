"""The measurement protocol: the load each benchmark ran, as the planner's serving model sees it."""

from __future__ import annotations

import pytest

from solver.calibration.parameters import baseline_params
from solver.calibration.protocol import (
    MAX_ENGINE_BATCH,
    boundaries,
    engine_settings,
    predict,
    row_condition,
    row_load,
    row_shape,
    saturation,
    trtllm_bench_tokens,
)
from solver.physics.continuous import ContinuousLoad, steady_state
from solver.physics.cost import CostModel
from solver.physics.evaluate import evaluate_plan, evaluate_stages
from solver.physics.queueing import BURST, CLOSED, POISSON
from tests.calibration.sample import row_at


def test_trtllm_bench_chunk_budget_follows_its_rounding() -> None:
    # finetune_setting: batch x (1 + isl / osl), capped at 32768, rounded up (pp = 1)
    assert trtllm_bench_tokens(4096, 128, 128) == 8192  # 8192 exactly: 1024 x 8
    assert trtllm_bench_tokens(100, 128, 2048) == 2048  # 106 tokens: the 2048 floor
    assert trtllm_bench_tokens(300, 2048, 128) == 5120  # 5100 -> 512 x 10
    assert trtllm_bench_tokens(4096, 2048, 128) == 32768  # the cap


def test_max_load_runs_every_slot_the_kv_memory_holds(sample) -> None:
    rows, _ = sample
    row = row_at(rows, 7)  # Llama-3.1-70B, 4 x H100, FP8, 128/128
    engine = engine_settings(row)
    cond = row_condition(row)
    model, shape = CostModel(cond), row_shape(cond, 4)
    device = cond.cluster.gpu.memory_bytes

    def admitted(batch: int) -> bool:
        """TensorRT-LLM: full-context KV of every sequence in 90% of what the rest leaves free."""
        (stage,) = evaluate_stages(model.candidate(shape, batch), model.arch.layer_kinds, [0, 80])
        return stage.kv_cache_bytes <= 0.9 * (device - (stage.memory_bytes - stage.kv_cache_bytes))

    slots = engine.slots
    assert 1 < slots <= MAX_ENGINE_BATCH and admitted(slots)
    assert slots == MAX_ENGINE_BATCH or not admitted(slots + 1)
    assert engine.chunk_tokens == trtllm_bench_tokens(slots, 128, 128)
    # the condition states that engine share: its usable memory holds exactly that
    assert cond.cluster.usable_memory_fraction == engine.memory_fraction
    load = row_load(row, cond)
    assert (load.slots, load.chunk_tokens, load.arrivals.kind) == (slots, engine.chunk_tokens, CLOSED)
    assert load.utilization == saturation(slots, engine.chunk_tokens, 128, 128)
    # 70B FP8 on one H100 fits (the published run exists)
    assert predict(row_at(rows, 11), baseline_params(rows)) is not None


def test_saturation_is_where_the_budget_stops_feeding_the_slots() -> None:
    u = saturation(2048, 8192, 467, 16)  # short outputs: prompts fill the budget first
    assert 0 < u < 1
    assert steady_state(ContinuousLoad(2048, u, 8192), 1, 467, 16).feasible
    assert not steady_state(ContinuousLoad(2048, u * 1.001, 8192), 1, 467, 16).feasible
    assert saturation(64, 8192, 128, 128) == 1.0


def test_closed_loop_holds_the_users_and_queues_the_rest(sample) -> None:
    rows, _ = sample
    one, hundred = row_at(rows, 35), row_at(rows, 38)  # NIM 70B FP8 TP2, 5000/500, 1 and 100 users
    load = row_load(one, row_condition(one))
    assert (load.slots, load.utilization, load.arrivals.count) == (1, 1.0, 1)
    slots = engine_settings(hundred).slots
    load = row_load(hundred, row_condition(hundred))
    assert slots < 100  # the KV cache holds fewer than 100 full 5500-token sequences
    assert (load.slots, load.arrivals.kind, load.arrivals.count) == (slots, CLOSED, 100)


def test_poisson_rate_is_met_by_the_solved_utilization(sample) -> None:
    rows, _ = sample
    row = row_at(rows, 28)  # Llama-3.1-70B TP4 BF16 at 2 req/s achieved
    cond = row_condition(row, baseline_params(rows))
    load = row_load(row, cond)
    assert load.arrivals.kind == POISSON and load.chunk_tokens == 8192
    _, _, metrics = evaluate_plan(cond, row_shape(cond, 4), load, boundaries(cond))
    assert metrics.requests_per_s == pytest.approx(2.0, rel=1e-6)


def test_burst_holds_every_request_the_budget_feeds(sample) -> None:
    rows, _ = sample
    row = row_at(rows, 24)  # 500 requests at once, Llama-3.1-8B BF16, 202/214
    load = row_load(row, row_condition(row))
    assert load.arrivals.kind == BURST and load.arrivals.count == 500
    assert load.utilization * load.slots == pytest.approx(500)  # 500 <= the slots


def test_moe_rows_split_experts_by_tp(sample) -> None:
    rows, _ = sample
    cond = row_condition(row_at(rows, 10))  # Mixtral-8x7B TP2: "MoE EP not stated (TP only)"
    shape = row_shape(cond, 2)
    assert (shape.tp, shape.etp, shape.ep) == (2, 2, 1)
