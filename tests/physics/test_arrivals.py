"""Closed-loop and burst arrivals in the continuous serving model (physics/queueing.py), by hand."""

from __future__ import annotations

import pytest

from solver.physics.continuous import ContinuousLoad, continuous_point, steady_state
from solver.physics.queueing import (
    BURST,
    CLOSED,
    Arrivals,
    burst_backlog_steps,
    burst_slot_wait_rounds,
    closed_wait_rounds,
)
from solver.physics.serving import PipelineAggregates


def test_closed_loop_waits_only_beyond_the_slots() -> None:
    # 150 users on 100 slots, a request holds its slot 500 rounds: W = 50 x 500 / 100 = 250 rounds
    assert closed_wait_rounds(150, 100, 500.0) == 250.0
    assert closed_wait_rounds(100, 100, 500.0) == 0.0
    assert closed_wait_rounds(5, 100, 500.0) == 0.0


def test_burst_waits_for_the_prompts_ahead_and_for_slots() -> None:
    # 500 prompts of 400 tokens, 8000 tokens of room per step: the mean request has 249.5 ahead,
    # 249.5 x 400 / 8000 = 12.475 full steps; the p90 request 0.9 x 499 x 400 / 8000 = 22.455
    assert burst_backlog_steps(500, 400, 8000.0, "mean") == pytest.approx(12.475)
    assert burst_backlog_steps(500, 400, 8000.0, "p90") == pytest.approx(22.455)
    # 10 requests on 4 slots holding 100 rounds: requests 5..10 wait 1..6 x 25 rounds, mean 21 x 25 / 10
    assert burst_slot_wait_rounds(10, 4, 100.0, "mean") == pytest.approx(52.5)
    assert burst_slot_wait_rounds(4, 4, 100.0, "mean") == 0.0


def test_a_burst_runs_full_steps_and_a_closed_loop_the_poisson_steady_state() -> None:
    poisson = steady_state(ContinuousLoad(500, 1.0, 8192), 1, 467, 256)
    burst = steady_state(ContinuousLoad(500, 1.0, 8192, Arrivals(BURST, 500)), 1, 467, 256)
    assert burst.chunk_tokens == pytest.approx(8192 - burst.decode_seqs)  # the backlog fills the room
    assert poisson.chunk_tokens == pytest.approx(max(poisson.prefill_tokens, 467))
    assert (burst.decode_seqs, burst.prefill_tokens) == (poisson.decode_seqs, poisson.prefill_tokens)


def test_closed_loop_ttft_is_own_prefill_half_a_step_and_the_loop_wait() -> None:
    """TTFT = k R_chunk + (1/2 + (N - C) L / C) R_mix with made-up step times."""
    load = ContinuousLoad(100, 1.0, 8192, Arrivals(CLOSED, 150))
    point = continuous_point(load, 1, 5000, 500)
    state = point.state
    aggregates = PipelineAggregates.of(1, {"mix": [0.1], "chunk": [0.4]})
    k, steps = state.prefill_steps, state.steps_per_request
    assert k == 1 and steps == 500
    assert point.ttft.value(aggregates) == pytest.approx(0.4 + (0.5 + 50 * 500 / 100) * 0.1)
