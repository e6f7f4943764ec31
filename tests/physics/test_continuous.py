"""Continuous batching with chunked prefill (physics/continuous.py, physics/queueing.py) pinned
against hand calculations, and the serving-model checks of issue 13: TPOT falls with TP at batch 1
on one NVSwitch node; Llama-3.1-70B FP8 on 8 x H100 under TTFT <= 1 s and TPOT <= 30 ms runs tens
of sequences per replica and exports them; static mode still prices fixed batches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.physics.continuous import ContinuousLoad, continuous_point, steady_state
from solver.physics.evaluate import evaluate_plan
from solver.physics.queueing import erlang_c, slot_wait_rounds, step_wait_rounds
from solver.physics.serving import ROUND, PipelineAggregates
from solver.physics.shapes import ParallelShape
from solver.planning.planner import solve
from solver.render.outputs import plan_folder_files

# ---- steady state ------------------------------------------------------------------------------


def test_steady_state_by_hand() -> None:
    """C = 64 slots at u = 0.5, budget T = 2048, I = 1024, O = 256, one stage: 32 active; a prompt
    fits one step (k = 1), a request holds its slot L = k + O - 1 = 256 steps; per step
    D = 32 x 255 / 256 decodes and P = 32 x 1024 / 256 = 128 prompt tokens."""
    s = steady_state(ContinuousLoad(64, 0.5, 2048), 1, 1024, 256)
    assert (s.microbatches, s.prefill_steps, s.steps_per_request) == (1, 1, 256)
    assert s.decode_seqs == pytest.approx(32 * 255 / 256)
    assert s.prefill_tokens == pytest.approx(128)
    assert s.chunk_tokens == pytest.approx(1024)  # a step carrying a prompt carries all of it
    assert s.prefill_step_share == pytest.approx(0.125)
    assert s.feasible


def test_a_long_prompt_takes_the_budget_the_decodes_leave() -> None:
    """I = 4096 over T = 2048 with decodes beside it: 2 steps would need the whole budget, so a
    prompt takes k = 3 (4096 / (2048 - D) > 2); C = 2 at u = 0.5: one active sequence, O = 2:
    L = 4 steps, D = 1/4, P = 1024, a chunk step carries T - D = 2047.75 prompt tokens."""
    s = steady_state(ContinuousLoad(2, 0.5, 2048), 1, 4096, 2)
    assert (s.prefill_steps, s.steps_per_request) == (3, 4)
    assert s.decode_seqs == pytest.approx(0.25) and s.prefill_tokens == pytest.approx(1024)
    assert s.chunk_tokens == pytest.approx(2047.75) and s.feasible


def test_no_steady_state_when_the_budget_cannot_feed_the_active_sequences() -> None:
    """Four active sequences with 4096-token prompts need 4097 tokens per step of a 2048 budget."""
    assert not steady_state(ContinuousLoad(8, 0.5, 2048), 1, 4096, 2).feasible


def test_pipeline_stages_take_turns_with_micro_batches() -> None:
    s = steady_state(ContinuousLoad(64, 0.5, 8192), 4, 1024, 256)
    assert s.microbatches == 4
    assert s.decode_seqs == pytest.approx(8 * 255 / 256)  # 32 active over 4 micro-batches


# ---- queueing ----------------------------------------------------------------------------------


def test_erlang_c_known_values() -> None:
    """M/M/1: an arrival waits with probability rho; M/M/2 at a = 1 (rho = 0.5): 1/3."""
    assert erlang_c(1, 0.3) == pytest.approx(0.3)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(4, 4.0) == 1.0 and erlang_c(4, 0.0) == 0.0
    assert erlang_c(64, 32.0) < erlang_c(64, 48.0) < erlang_c(64, 60.0) < 1


def test_slot_wait_by_hand() -> None:
    """C = 2, a = 1, a request holds its slot L = 60 rounds, deterministic holding times
    (Allen-Cunneen (1 + 0) / 2): mean wait ErlangC x L / (C - a) / 2 = 10 rounds; p90
    ln(ErlangC / 0.1) x L / 2 = 36.1 rounds; p50 0 (two in three arrivals find a free slot)."""
    assert slot_wait_rounds(2, 0.5, 60, "mean") == pytest.approx(10)
    assert slot_wait_rounds(2, 0.5, 60, "p90") == pytest.approx(math.log(10 / 3) * 30)
    assert slot_wait_rounds(2, 0.5, 60, "p50") == 0
    assert step_wait_rounds("mean") == 0.5 and step_wait_rounds("p99") == 0.99


# ---- metrics as forms --------------------------------------------------------------------------


def _value(form: Any, chunk: float, mix: float) -> float:
    return form.value(PipelineAggregates(1, {"chunk": chunk, "mix": mix}, {"chunk": chunk, "mix": mix}))


def test_continuous_metrics_by_hand() -> None:
    """C = 2 at u = 0.5, I = 1024, O = 61, T = 2048: k = 1, L = 61. With a chunk step of 40 ms and
    an average step of 10 ms: TTFT = k R_chunk + (1/2 + W) R_mix, W = 61/6 rounds; TPOT = R_mix;
    e2e = TTFT + 60 R_mix; 1 active sequence makes 60 tokens in L steps: L / 60 rounds a token."""
    point = continuous_point(ContinuousLoad(2, 0.5, 2048), 1, 1024, 61)
    wait = (1 / 3) * 61 / 2
    ttft = 0.040 + (0.5 + wait) * 0.010
    assert _value(point.ttft, 0.040, 0.010) == pytest.approx(ttft)
    assert _value(point.tpot, 0.040, 0.010) == pytest.approx(0.010)
    assert _value(point.e2e, 0.040, 0.010) == pytest.approx(ttft + 60 * 0.010)
    assert point.seconds_per_token.coefficient("mix", ROUND) == pytest.approx(61 / (1 * 61))


def test_itl_percentile_is_the_chunk_step_when_chunks_are_frequent() -> None:
    """12.5% of steps carry a prompt: the p90 inter-token latency is a chunk step, p50 is not."""
    load = ContinuousLoad(64, 0.5, 2048)
    assert _value(continuous_point(load, 1, 1024, 256, "p90").tpot, 0.040, 0.010) == 0.040
    assert _value(continuous_point(load, 1, 1024, 256, "p50").tpot, 0.040, 0.010) == 0.010


def test_prefill_only_workload_scores_input_tokens() -> None:
    point = continuous_point(ContinuousLoad(8, 0.5, 8192), 1, 2048, 1)
    assert point.scored_tokens == 2048
    assert _value(point.tpot, 0.040, 0.010) == 0  # no decode step


# ---- issue 13's checks -------------------------------------------------------------------------


def _llama70b(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "llama-3.1-70b", "precision": {"weights": "fp8", "kv_cache": "fp8"},
        "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 8},
        "workload": {"input_tokens": 2048, "output_tokens": 512},
        "slo": {"ttft_ms": 1000, "tpot_ms": 30},
        "objective": {"latency_weight": 0, "throughput_weight": 1},
    }
    return data | changes


@pytest.mark.parametrize("weights", ["fp8", "bf16"])
def test_batch_one_tpot_falls_from_tp2_to_tp4_to_tp8_on_one_nvswitch_node(weights: str) -> None:
    condition = build_condition(_llama70b(precision={"weights": weights, "kv_cache": weights}),
                                "c.yaml", "c")
    tpot = []
    for tp in (2, 4, 8):
        _, _, metrics = evaluate_plan(condition, ParallelShape(tp=tp), 1, [0, 80])
        tpot.append(metrics.tpot_s)
    assert tpot[0] > tpot[1] > tpot[2], tpot


def test_llama70b_under_slos_runs_tens_of_sequences_and_exports_them() -> None:
    """Issue 13: TTFT <= 1 s, TPOT <= 30 ms, FP8 on 8 x H100: static batching chose 3 to 6
    sequences per replica; the continuous model's concurrency is what KV memory and the SLOs
    allow, and the launch lines carry it."""
    condition = build_condition(_llama70b(), "c.yaml", "c")
    solution = solve(condition)
    plan = solution.plan
    serving = plan.serving
    assert serving is not None and serving.mode == "continuous"
    assert plan.batch_size >= 16 and serving.max_num_seqs == plan.batch_size
    assert plan.metrics.ttft_ms <= 1000 and plan.metrics.tpot_ms <= 30
    files = plan_folder_files(condition, solution, export=True)
    launch = "\n".join(text for path, text in files.items() if Path(str(path)).parts[0] == "launch"
                       and isinstance(text, str))
    assert f"--max-num-seqs {plan.batch_size}" in launch
    assert f"--max-num-batched-tokens {serving.chunk_tokens}" in launch


def test_static_mode_prices_a_fixed_batch() -> None:
    """serving.mode: static keeps the first planner's serving model: a batch of 8 prefilled
    together (TTFT = the prefill of all 8 prompts), then decoded together."""
    data = _llama70b(serving={"mode": "static"},
                     workload={"input_tokens": 2048, "output_tokens": 512, "batch_size": 8})
    data.pop("slo")
    plan = solve(build_condition(data, "c.yaml", "c")).plan
    assert plan.serving is None or plan.serving.mode == "static"
    assert plan.batch_size == 8
    e2e = plan.metrics.ttft_ms + 512 * plan.metrics.tpot_ms
    assert plan.metrics.e2e_latency_ms == pytest.approx(e2e, rel=1e-9)
    tokens = plan.parallelism.dp * 8 * 512 / (e2e / 1e3)
    assert plan.metrics.throughput_tokens_per_s == pytest.approx(tokens, rel=1e-9)
