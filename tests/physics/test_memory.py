"""Memory per GPU pinned against hand calculations (DESIGN.md §3, "memory per GPU").

Every expected number below is written out from the model card's raw dimensions; none of them is
computed with solver.physics.architecture or solver.physics.cost helpers, so a wrong formula there fails here.

Conventions the hand numbers follow (DESIGN.md §3 and the brief):
- per-layer weights = (attention projections + input norm + SwiGLU FFN + post norm) / tp for dense
  layers; MoE: attention / tp, routed experts / (ep * etp), router + post norm replicated;
- embedding V*h / tp on the first stage; LM head (V*h + final norm h) / tp on the last;
- KV cache = sequences x (input + output) tokens x layers x 2 * n_kv * d elements x bytes, split
  over min(tp, n_kv) ranks (replicated beyond the KV head count); attention DP keeps
  ceil(B / attn_dp) sequences per GPU.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from solver.document.building import build_plan
from solver.inputs.condition import build_condition
from solver.physics.evaluate import evaluate_plan
from solver.physics.shapes import ParallelShape

REL = 1e-12

# Llama-3.1-70B raw dimensions (models/llama-3.1-70b.yaml)
L70 = dict(L=80, h=8192, n_h=64, n_kv=8, d=128, f=28672, V=128256)
# Mixtral-8x7B (models/mixtral-8x7b.yaml)
MIX = dict(L=32, h=4096, n_h=32, n_kv=8, d=128, E=8, f_e=14336, V=32000)


def _condition(model: Any = "llama-3.1-70b", *, gpu: str = "h100-sxm-80gb", weights: str = "fp8",
               kv: str = "fp8", batch: int = 12, input_tokens: int = 2048, output_tokens: int = 512,
               num_nodes: int = 1, hardware: dict[str, Any] | None = None,
               policy: dict[str, Any] | None = None, workload: dict[str, Any] | None = None):
    data: dict[str, Any] = {
        "model": model,
        "precision": {"weights": weights, "kv_cache": kv, "activations": "bf16"},
        "hardware": {"gpu": gpu, "num_nodes": num_nodes, **(hardware or {})},
        "workload": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                     "batch_size": batch, **(workload or {})},
    }
    if policy:
        data["policy"] = policy
    return build_condition(data, "test", "test")


def _dense_layer_elements(m: dict[str, int]) -> int:
    h, n_h, n_kv, d, f = m["h"], m["n_h"], m["n_kv"], m["d"], m["f"]
    attention = h * n_h * d + 2 * h * n_kv * d + n_h * d * h  # Q, K+V, O
    return attention + h + 3 * h * f + h  # + input norm + SwiGLU + post norm


# ---- Llama-3.1-70B, fp8, TP4 PP1 ----------------------------------------------------------------


def test_llama70b_tp4_weights_per_gpu_by_hand() -> None:
    cond = _condition()
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, dp=2), 12, [0, 80])
    # written out as in the brief: 1 byte per fp8 element
    per_layer = 8192 * 64 * 128 * 2 + 2 * 8192 * 8 * 128 + 8192 + 3 * 8192 * 28672 + 8192
    embedding = 128256 * 8192
    lm_head = 128256 * 8192
    final_norm = 8192
    expected = (80 * per_layer + embedding + lm_head + final_norm) / 4 * 1
    assert per_layer == _dense_layer_elements(L70)
    assert expected == 17_638_426_624  # 70.55 B params / 4 ranks, 1 byte each
    assert len(stages) == 1
    assert stages[0].weights_bytes == pytest.approx(expected, rel=REL)


def test_llama70b_tp4_kv_cache_per_gpu_by_hand() -> None:
    cond = _condition()
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, dp=2), 12, [0, 80])
    tokens = 2048 + 512  # KV sized for the full context
    expected = 12 * tokens * 80 * (2 * 8 * 128) * 1 / min(4, 8)
    assert expected == 1_258_291_200
    assert stages[0].kv_cache_bytes == pytest.approx(expected, rel=REL)


def test_llama70b_per_layer_and_extras_by_hand() -> None:
    cond = _condition()
    costs, _, _ = evaluate_plan(cond, ParallelShape(tp=4, dp=2), 12, [0, 80])
    (kind,) = costs.kinds
    layer = costs.layer[kind]
    assert layer.weight_bytes == pytest.approx(_dense_layer_elements(L70) / 4, rel=REL)
    assert layer.kv_cache_bytes == pytest.approx(12 * 2560 * 2048 / 4, rel=REL)
    assert costs.first_stage.weight_bytes == pytest.approx(128256 * 8192 / 4, rel=REL)
    assert costs.last_stage.weight_bytes == pytest.approx((128256 * 8192 + 8192) / 4, rel=REL)
    assert costs.first_stage.kv_cache_bytes == 0 and costs.last_stage.kv_cache_bytes == 0


def test_llama70b_bf16_weights_and_kv_double_the_fp8_numbers() -> None:
    fp8 = evaluate_plan(_condition(), ParallelShape(tp=4, dp=2), 12, [0, 80])[1][0]
    bf16 = evaluate_plan(_condition(weights="bf16", kv="bf16"), ParallelShape(tp=4, dp=2), 12,
                         [0, 80])[1][0]
    assert bf16.weights_bytes == pytest.approx(2 * fp8.weights_bytes, rel=REL)
    assert bf16.kv_cache_bytes == pytest.approx(2 * 12 * 2560 * 80 * 2048 / 4, rel=REL)


def test_memory_total_is_weights_kv_activations_overhead() -> None:
    cond = _condition()
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, dp=2), 12, [0, 80])
    s = stages[0]
    # activation workspace: min(12 * 2048, chunk 8192) tokens x (6h + 2 * f/tp) x 2 bytes (bf16)
    workspace = min(12 * 2048, 8192) * (6 * 8192 + 2 * 28672 / 4) * 2
    logits = 12 * 128256 / 4 * 4.0  # fp32 logits of the last positions, vocab split over tp
    assert s.activation_bytes == pytest.approx(workspace + logits, rel=REL)
    assert s.overhead_bytes == pytest.approx(1.0e9, rel=REL)  # default runtime_overhead_gb
    assert s.memory_bytes == pytest.approx(
        s.weights_bytes + s.kv_cache_bytes + workspace + logits + 1.0e9, rel=REL)


def test_runtime_overhead_follows_the_condition() -> None:
    cond = _condition(hardware={"runtime_overhead_gb": 5.5})
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=8), 4, [0, 80])
    assert stages[0].overhead_bytes == pytest.approx(5.5e9, rel=REL)


# ---- usable memory limit -------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.9, 0.85, 1.0])
def test_usable_memory_limit(fraction: float) -> None:
    cond = _condition(hardware={"usable_memory_fraction": fraction})
    # the engine's share of the capacity the device reports: 81559 MiB on an H100 SXM
    assert cond.cluster.usable_memory_bytes == pytest.approx(79.65 * 2**30 * fraction, rel=REL)


def _memory_rows(cond, shape: ParallelShape, batch: int, boundaries: list[int]):
    from solver.document.plan import SolverInfo
    from solver.document.verify import check_memory_and_slo

    info = SolverInfo(method="check", objective=None, best_bound=None, gap=None,
                      candidates=1, candidates_in_model=1, candidates_removed={})
    plan = build_plan(cond, shape, batch, boundaries, "checked", info)
    return [r for r in check_memory_and_slo(cond, plan) if r.name.startswith("memory.")]


def test_llama70b_bf16_on_one_gpu_exceeds_usable_memory() -> None:
    # 70.55e9 params x 2 bytes = 141 GB of weights alone > 80 GB x 0.9
    cond = _condition(weights="bf16", kv="bf16", batch=1, num_nodes=1,
                      hardware={"gpus_per_node": 1})
    (row,) = _memory_rows(cond, ParallelShape(tp=1), 1, [0, 80])
    assert not row.passed


def test_llama70b_fp8_tp4_fits_and_limit_is_0_9_of_79_65_gib() -> None:
    cond = _condition()
    (row,) = _memory_rows(cond, ParallelShape(tp=4, dp=2), 12, [0, 80])
    assert row.passed
    assert "76.97 GB" in row.limit  # 0.9 x 79.65 GiB = 76.97e9 bytes


# ---- pipeline parallel ---------------------------------------------------------------------------


def test_pp2_stage0_holds_embedding_stage1_holds_lm_head() -> None:
    cond = _condition()
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, pp=2), 12, [0, 30, 80])
    per_layer = _dense_layer_elements(L70)
    V, h = 128256, 8192
    assert stages[0].weights_bytes == pytest.approx((30 * per_layer + V * h) / 4, rel=REL)
    assert stages[1].weights_bytes == pytest.approx((50 * per_layer + V * h + h) / 4, rel=REL)
    # KV for all 12 concurrent sequences (both micro-batches), only the stage's own layers
    assert stages[0].kv_cache_bytes == pytest.approx(12 * 2560 * 30 * 2048 / 4, rel=REL)
    assert stages[1].kv_cache_bytes == pytest.approx(12 * 2560 * 50 * 2048 / 4, rel=REL)


def test_pp2_logits_buffer_only_on_last_stage() -> None:
    cond = _condition()
    costs, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, pp=2), 12, [0, 40, 80])
    assert costs.microbatches == 2 and costs.point.sequences_per_microbatch == 6
    workspace = min(6 * 2048, 8192) * (6 * 8192 + 2 * 28672 / 4) * 2
    logits = 6 * 128256 / 4 * 4.0
    assert stages[0].activation_bytes == pytest.approx(workspace, rel=REL)
    assert stages[1].activation_bytes == pytest.approx(workspace + logits, rel=REL)


def test_small_prefill_workspace_is_not_capped_by_chunk() -> None:
    cond = _condition(batch=2, input_tokens=1000, output_tokens=100)
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=8), 2, [0, 80])
    workspace = 2 * 1000 * (6 * 8192 + 2 * 28672 / 8) * 2  # 2000 tokens < 8192 chunk
    logits = 2 * 128256 / 8 * 4.0
    assert stages[0].activation_bytes == pytest.approx(workspace + logits, rel=REL)


# ---- TP beyond the KV head count -----------------------------------------------------------------


def test_tp16_beyond_kv_heads_replicates_kv() -> None:
    # 16 ranks but only 8 KV heads: each KV head lives on 2 ranks, so the KV split is 8, not 16
    cond = _condition(num_nodes=2, policy={"tp_within_node": False})
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=16), 12, [0, 80])
    per_layer = _dense_layer_elements(L70)
    V, h = 128256, 8192
    assert stages[0].weights_bytes == pytest.approx((80 * per_layer + 2 * V * h + h) / 16, rel=REL)
    assert stages[0].kv_cache_bytes == pytest.approx(12 * 2560 * 80 * (2 * 8 * 128) / 8, rel=REL)


def test_kv_split_equals_tp_below_kv_heads() -> None:
    for tp in (1, 2, 4, 8):
        cond = _condition(batch=3)
        _, stages, _ = evaluate_plan(cond, ParallelShape(tp=tp, dp=8 // tp), 3, [0, 80])
        assert stages[0].kv_cache_bytes == pytest.approx(3 * 2560 * 80 * 2048 / tp, rel=REL)


def test_sequence_parallel_splits_kv_tokens() -> None:
    # Llama-3.1-8B, bf16 KV, sp=2: each rank keeps ceil(2561 / 2) = 1281 tokens of every sequence
    cond = _condition("llama-3.1-8b", weights="bf16", kv="bf16", batch=3, input_tokens=2049,
                      output_tokens=512)
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=2, sp=2, dp=2), 3, [0, 32])
    expected = 3 * math.ceil(2561 / 2) * 32 * (2 * 8 * 128) * 2 / 2
    assert stages[0].kv_cache_bytes == pytest.approx(expected, rel=REL)


# ---- MoE: Mixtral-8x7B with expert folding -------------------------------------------------------


def test_mixtral_ep2_etp2_tp2_attn_dp2_weights_by_hand() -> None:
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", weights="bf16", kv="bf16", batch=5,
                      input_tokens=1024, output_tokens=512, hardware={"gpus_per_node": 4})
    shape = ParallelShape(tp=2, ep=2, etp=2, attn_dp=2)
    costs, stages, _ = evaluate_plan(cond, shape, 5, [0, 32])
    h, n_h, n_kv, d, E, f_e, V = 4096, 32, 8, 128, 8, 14336, 32000
    attention = h * n_h * d + 2 * h * n_kv * d + n_h * d * h + h  # + input norm
    experts = E * 3 * h * f_e
    router, post_norm = h * E, h
    layer = attention / 2 + experts / (2 * 2) + router + post_norm
    (kind,) = costs.kinds
    assert costs.layer[kind].weight_bytes == pytest.approx(layer * 2, rel=REL)
    total = 32 * layer + V * h / 2 + (V * h + h) / 2
    assert stages[0].weights_bytes == pytest.approx(total * 2, rel=REL)
    # sanity: the hand terms add up to the published 46.7 B parameters
    assert 32 * (attention + experts + router + post_norm) + 2 * V * h + h == pytest.approx(
        46.7e9, rel=0.01)


def test_mixtral_attention_dp_kv_holds_ceil_batch_over_attn_dp() -> None:
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", weights="bf16", kv="bf16", batch=5,
                      input_tokens=1024, output_tokens=512, hardware={"gpus_per_node": 4})
    shape = ParallelShape(tp=2, ep=2, etp=2, attn_dp=2)
    _, stages, _ = evaluate_plan(cond, shape, 5, [0, 32])
    sequences = math.ceil(5 / 2)  # 3 of the 5 sequences on the larger attention-DP group
    expected = sequences * (1024 + 512) * 32 * (2 * 8 * 128) * 2 / min(2, 8)
    assert stages[0].kv_cache_bytes == pytest.approx(expected, rel=REL)


def test_mixtral_ep4_etp1_experts_split_four_ways() -> None:
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", weights="bf16", kv="bf16", batch=8,
                      input_tokens=1024, output_tokens=512, hardware={"gpus_per_node": 4})
    shape = ParallelShape(tp=4, ep=4, etp=1)
    costs, _, _ = evaluate_plan(cond, shape, 8, [0, 32])
    h, E, f_e = 4096, 8, 14336
    attention = h * 32 * 128 + 2 * h * 8 * 128 + 32 * 128 * h + h
    layer = attention / 4 + 2 * 3 * h * f_e + h * E + h  # 8 experts / 4 ranks = 2 whole experts
    (kind,) = costs.kinds
    assert costs.layer[kind].weight_bytes == pytest.approx(layer * 2, rel=REL)
    assert costs.layer[kind].kv_cache_bytes == pytest.approx(8 * 1536 * 2048 * 2 / 4, rel=REL)


# ---- sliding window (gpt-oss) --------------------------------------------------------------------


def test_gpt_oss_windowed_layers_hold_window_tokens_of_kv() -> None:
    cond = _condition("gpt-oss-120b", weights="bf16", kv="bf16", batch=4, input_tokens=2048,
                      output_tokens=512, hardware={"gpus_per_node": 4})
    shape = ParallelShape(tp=4, ep=4, etp=1)
    costs, stages, _ = evaluate_plan(cond, shape, 4, [0, 36])
    per_token = 2 * 8 * 64 * 2 / 4  # K+V, 8 KV heads of width 64, bf16, split over tp=4
    by_window = {k.window_tokens: costs.layer[k] for k in costs.kinds}
    assert set(by_window) == {128, None}
    assert by_window[128].kv_cache_bytes == pytest.approx(4 * 128 * per_token, rel=REL)
    assert by_window[None].kv_cache_bytes == pytest.approx(4 * 2560 * per_token, rel=REL)
    # 18 even layers windowed, 18 odd layers full
    assert stages[0].kv_cache_bytes == pytest.approx(
        18 * 4 * 128 * per_token + 18 * 4 * 2560 * per_token, rel=REL)


def test_tied_embeddings_pp1_stores_the_matrix_once() -> None:
    card = {"name": "tied-toy", "num_hidden_layers": 4, "hidden_size": 1024,
            "num_attention_heads": 8, "num_key_value_heads": 8, "intermediate_size": 4096,
            "vocab_size": 32000, "tie_word_embeddings": True}
    cond = _condition(card, weights="bf16", kv="bf16", batch=2, input_tokens=128, output_tokens=64)
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=2, dp=4), 2, [0, 4])
    h, f, V = 1024, 4096, 32000
    layer = 4 * h * h + h + 3 * h * f + h
    # one V*h matrix shared by embedding and head; the final norm (h) is within the tolerance
    assert stages[0].weights_bytes == pytest.approx((4 * layer + V * h) / 2 * 2, rel=1e-4)


def test_tied_embeddings_pp2_last_stage_holds_a_copy_of_the_head() -> None:
    card = {"name": "tied-toy", "num_hidden_layers": 4, "hidden_size": 1024,
            "num_attention_heads": 8, "num_key_value_heads": 8, "intermediate_size": 4096,
            "vocab_size": 32000, "tie_word_embeddings": True}
    cond = _condition(card, weights="bf16", kv="bf16", batch=2, input_tokens=128, output_tokens=64)
    _, stages, _ = evaluate_plan(cond, ParallelShape(tp=2, pp=2, dp=2), 2, [0, 2, 4])
    h, f, V = 1024, 4096, 32000
    layer = 4 * h * h + h + 3 * h * f + h
    assert stages[0].weights_bytes == pytest.approx((2 * layer + V * h) / 2 * 2, rel=1e-4)
    assert stages[1].weights_bytes == pytest.approx((2 * layer + V * h + h) / 2 * 2, rel=1e-4)
