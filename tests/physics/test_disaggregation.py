"""Disaggregated serving's pools (physics/continuous.decode_point, physics/disaggregation.py)
pinned against hand calculations."""

from __future__ import annotations

from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.physics.continuous import DecodeLoad, decode_state
from solver.physics.cost import CostModel
from solver.physics.disaggregation import (
    PoolLink,
    kv_bytes_per_gpu,
    kv_transfer_s,
    prefill_condition,
    prefill_load,
    prefill_slots,
)
from solver.physics.evaluate import evaluate_plan
from solver.physics.serving import StaticLoad
from solver.physics.shapes import ParallelShape

LLAMA70B: dict[str, Any] = {
    "name": "llama70b-disagg", "model": "llama-3.1-70b",
    "precision": {"weights": "fp8", "kv_cache": "fp8", "activations": "bf16"},
    "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 2, "gpus_per_node": 8,
                 "inter_node_gb_per_s": 50},
    "workload": {"input_tokens": 4096, "output_tokens": 256},
    "serving": {"mode": "disaggregated"},
}


def _condition(**serving: Any) -> Any:
    data = dict(LLAMA70B, serving={"mode": "disaggregated", **serving})
    return build_condition(data, "<test>", "t")


def test_decode_state_by_hand() -> None:
    """64 slots at u = 0.5, O = 256, one stage: 32 decodes per step, a request holds its slot for
    O - 1 = 255 steps (its first token came from the prefill pool), no prompt tokens."""
    s = decode_state(DecodeLoad(64, 0.5), 1, 256)
    assert (s.microbatches, s.steps_per_request, s.budget) == (1, 255, 64)
    assert s.decode_seqs == pytest.approx(32) and s.prefill_tokens == 0
    assert s.prefill_step_share == 0 and s.feasible


def test_decode_step_is_a_pure_decode_of_the_active_sequences() -> None:
    """TPOT of a decode instance = the decode step of its 32 active sequences, exactly what a
    static batch of 32 pays per decode step (same context, no prompt chunks)."""
    c = _condition()
    shape = ParallelShape(tp=4)
    _, _, decode = evaluate_plan(c, shape, DecodeLoad(64, 0.5), [0, 80])
    _, _, static = evaluate_plan(c, shape, StaticLoad(32), [0, 80])
    assert decode.tpot_s == pytest.approx(static.tpot_s)
    # throughput = N O / ((O - 1) TPOT): 32 sequences each giving 256 tokens in 255 steps
    assert decode.throughput_tokens_per_s == pytest.approx(32 * 256 / (255 * decode.tpot_s))
    assert decode.requests_per_s == pytest.approx(32 / (255 * decode.tpot_s))


def test_decode_memory_has_no_prefill_workspace() -> None:
    """Workspace = one step of its decodes (64 tokens), not a prefill chunk of 8192."""
    c = _condition()
    costs, stages, _ = evaluate_plan(c, ParallelShape(tp=4), DecodeLoad(64, 0.5), [0, 80])
    card = c.model
    per_token = (6 * card.hidden_size + 2 * card.intermediate_size / 4) * 2  # bf16 activations
    assert costs.activation_bytes == pytest.approx(64 * per_token)


def test_prefill_instance_holds_a_chunk_budget_of_prompts() -> None:
    """I = 4096: a budget of 8192 holds 2 prompts (k = 1), 2048 one (k = 2), 16384 four."""
    assert [prefill_slots(t, 4096) for t in (2048, 4096, 8192, 16384)] == [1, 1, 2, 4]
    assert prefill_slots(3000, 4096) == 1  # k = 2 steps of 3000: 6000 tokens hold one prompt


def test_prefill_throughput_counts_input_tokens() -> None:
    """At u = 0.5 of 2 slots one prompt is active; it fills one step (k = 1, L = 1), so the
    instance prefills 4096 tokens per mixed step: throughput = 4096 / step."""
    c = prefill_condition(_condition())
    assert c.workload.output_tokens == 1 and c.serving.mode == "continuous"
    costs, stages, m = evaluate_plan(c, ParallelShape(tp=8), prefill_load(8192, 0.5, 4096), [0, 80])
    step = stages[0].step_s["mix"]
    assert m.throughput_tokens_per_s == pytest.approx(4096 / step)
    assert m.tpot_s == 0  # no decodes in the prefill pool


def test_kv_transfer_by_hand() -> None:
    """Llama-3.1-70B fp8 KV: 2 x 8 KV heads x 128 x 1 B = 2048 B per token and layer. A 4096-token
    prompt over 80 layers is 671 MB; TP8 holds 1/8 per GPU (83.9 MB), TP4 1/4 (167.8 MB). At
    50 GB/s per GPU plus the link latency: TP8 -> TP4 takes 167.8 MB / 50 GB/s = 3.36 ms + latency."""
    c = _condition()
    model = CostModel(c)
    send = kv_bytes_per_gpu(model, ParallelShape(tp=8), 4096)
    receive = kv_bytes_per_gpu(model, ParallelShape(tp=4), 4096)
    assert send == pytest.approx(4096 * 80 * 2048 / 8)
    assert receive == pytest.approx(4096 * 80 * 2048 / 4)
    link = PoolLink.of(c)
    alpha = c.cluster.collective_latency_s  # the card's (calibrated) message latency
    assert (link.bytes_per_s, link.latency_s) == pytest.approx((50e9, alpha))
    assert kv_transfer_s(send, receive, link) == pytest.approx(167_772_160 / 50e9 + alpha)
    assert kv_bytes_per_gpu(model, ParallelShape(tp=4, pp=3), 4096) == pytest.approx(
        4096 * 27 * 2048 / 4)  # the largest stage of 80 layers over 3 holds 27


def test_pool_link_from_the_pools_block() -> None:
    link = PoolLink.of(_condition(pools={"link_gb_per_s": 400, "link_latency_us": 20}))
    assert (link.bytes_per_s, link.latency_s) == pytest.approx((400e9, 20e-6))
