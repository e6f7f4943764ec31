"""Time side of the cost model pinned against hand calculations (DESIGN.md §3).

GEMM time = FLOPs / (peak * mfu) + bytes / (HBM * utilization) (math and weight streaming do not
overlap), attention core time = max(FLOPs / (peak * mfu), bytes / (HBM * utilization));
collectives are alpha-beta ring algorithms; serving metrics follow solver/physics/evaluate.py's
docstring. Expected numbers are
written out from raw card numbers (h, heads, widths, TB/s, TFLOP/s), not from solver helpers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.physics.cost import CostModel
from solver.physics.evaluate import Normalizers, evaluate_plan, evaluate_stages, serving_metrics
from solver.physics.moe_comm import DEEPEP
from solver.physics.passes import PASS_RATE
from solver.physics.shapes import ParallelShape

REL = 1e-9

# H100 SXM card numbers (conditions/hardware/h100-sxm-80gb.yaml)
H100_BF16 = 989e12
H100_FP8 = 1979e12
H100_HBM = 3.35e12
H100_INTRA = 450e9
H100_INTER = 50e9
MFU, MBU = 0.6, 0.8
ALPHA = 5e-6  # default collective_latency_us
# The cards carry calibrated efficiencies (docs/accuracy.md); the hand calculations below pin the
# uncalibrated defaults in the condition so they stay written out from raw numbers.
UNCALIBRATED = {"mfu": MFU, "memory_bandwidth_utilization": MBU, "layer_overhead_us": 0.0,
                "collective_latency_us": ALPHA * 1e6, "link_bandwidth_utilization": 1.0}

# Llama-3.1-70B
H, N_H, N_KV, D, F, V = 8192, 64, 8, 128, 28672, 128256
ATTN_70B = H * N_H * D + 2 * H * N_KV * D + N_H * D * H + H  # projections + input norm
FFN_70B = 3 * H * F  # SwiGLU GEMM weights (the post norm is not a GEMM)


def _condition(model: Any = "llama-3.1-70b", *, gpu: str = "h100-sxm-80gb", weights: str = "fp8",
               kv: str = "fp8", batch: int = 12, input_tokens: int = 2048, output_tokens: int = 512,
               num_nodes: int = 1, hardware: dict[str, Any] | None = None,
               policy: dict[str, Any] | None = None, objective: dict[str, Any] | None = None):
    data: dict[str, Any] = {
        "model": model,
        "precision": {"weights": weights, "kv_cache": kv, "activations": "bf16"},
        "hardware": {"gpu": gpu, "num_nodes": num_nodes, **UNCALIBRATED, **(hardware or {})},
        "workload": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                     "batch_size": batch},
    }
    if policy:
        data["policy"] = policy
    if objective:
        data["objective"] = objective
    return build_condition(data, "test", "test")


QKV_70B, O_70B = H * N_H * D + 2 * H * N_KV * D, N_H * D * H


def _depth(k: float, hidden: int = H) -> float:
    """Time per FLOP of a K-deep GEMM relative to a hidden-deep one (physics/gemm.py, K0 = 720)."""
    return (1 + 720 / k) / (1 + 720 / hidden)


def _math_70b(tokens: float, tp: int) -> float:
    """GEMM FLOPs of a Llama-70B layer weighted by their depth: the row-parallel output
    projection is N_H D / tp deep, the FFN's down projection F / tp; the rest hidden-deep."""
    attention = (QKV_70B + O_70B * _depth(N_H * D / tp)) / (QKV_70B + O_70B)
    ffn = (2 + _depth(F / tp)) / 3
    return 2 * tokens * (ATTN_70B * attention + FFN_70B * ffn) / tp


def _passes_70b(tokens: float, tp: int) -> float:
    """Bytes of the kernels between the GEMMs (physics/passes.py), by hand for Llama-3.1-70B with
    bf16 activations (no quantization pass): two fused add + RMSNorms (8 H 16-bit values per token,
    on every TP rank), rotary of q and k ((N_H / tp + N_KV / tp) D values read and written),
    SwiGLU (2 F / tp 16-bit values read, F / tp written)."""
    norms = 8 * H * 2
    rotary = (N_H / tp + N_KV / min(tp, N_KV)) * D * 2 * 2
    swiglu = F / tp * (2 * 2 + 2)
    return tokens * (norms + rotary + swiglu)


def _all_reduce_s(size: float, n: int, bw: float, alpha: float = ALPHA) -> float:
    """NVLink inside a node: the faster of one-shot and two-shot."""
    return min(alpha + (n - 1) * size / bw, 2 * alpha + 2 * (n - 1) / n * size / bw)


def _all_reduce_across_s(size: float, n: int, bw: float, alpha: float = ALPHA) -> float:
    """Across nodes: ring/tree bandwidth term, 2 ceil(log2 n) latency steps."""
    return 2 * (n - 1) / n * size / bw + 2 * math.ceil(math.log2(n)) * alpha


# ---- decode: memory-bound at small batch ---------------------------------------------------------


def test_llama70b_decode_layer_is_memory_bound_by_hand() -> None:
    cond = _condition()
    costs = CostModel(cond).candidate(ParallelShape(tp=4, dp=2), 12)
    (kind,) = costs.kinds
    decode = costs.layer[kind].steps["decode"]
    hbm = H100_HBM * MBU  # 2.68e12 B/s
    flops_s = H100_BF16 * MFU  # attention kernels in bf16 (the GEMMs run fp8: twice as fast)
    b, tp = 12, 4
    mean_ctx = 2048 + 512 / 2  # decode context averaged over the output tokens
    weight_bytes = (ATTN_70B + FFN_70B) / tp * 1  # fp8
    kv_read = b * mean_ctx * (2 * N_KV * D) * 1 / min(tp, N_KV)
    # every operator is memory-bound at batch 12: check each against its FLOPs
    gemm_flops = 2 * b * (ATTN_70B + FFN_70B) / tp
    core_flops = b * 2 * N_H * mean_ctx * (D + D) / tp
    assert gemm_flops / flops_s < weight_bytes / hbm
    assert core_flops / flops_s < kv_read / hbm
    # the GEMMs stream their weights and do their math one after the other; the core is KV-bound
    # and the kernels between the GEMMs stream the batch's activations
    passes = _passes_70b(b, tp)
    expected = (_math_70b(b, tp) / (H100_FP8 * MFU) + (weight_bytes + kv_read) / hbm  # fp8
                + passes / (hbm * PASS_RATE))  # the kernels between the GEMMs at their own rate
    assert decode.compute_s == pytest.approx(expected, rel=REL)
    assert decode.hbm_bytes == pytest.approx(weight_bytes + kv_read + passes, rel=REL)
    assert decode.flops == pytest.approx(gemm_flops + core_flops, rel=REL)


def test_llama70b_decode_layer_comm_two_all_reduces() -> None:
    cond = _condition()
    costs = CostModel(cond).candidate(ParallelShape(tp=4, dp=2), 12)
    (kind,) = costs.kinds
    size = 12 * H * 2  # one token per sequence, bf16 activations
    expected = 2 * _all_reduce_s(size, 4, H100_INTRA)  # attention + FFN (one-shot at this size)
    assert costs.layer[kind].steps["decode"].comm_s == pytest.approx(expected, rel=REL)
    assert costs.layer[kind].steps["decode"].comm_bytes == pytest.approx(2 * 2 * 3 / 4 * size, rel=REL)


def test_decode_time_scales_with_hbm_utilization_override() -> None:
    base = CostModel(_condition()).candidate(ParallelShape(tp=4, dp=2), 12)
    slow = CostModel(_condition(hardware={"memory_bandwidth_utilization": 0.4})).candidate(
        ParallelShape(tp=4, dp=2), 12)
    (kind,) = base.kinds
    decode = base.layer[kind].steps["decode"]
    # half the bandwidth doubles every memory term (weights and KV read at the HBM rate, the
    # kernels between the GEMMs at PASS_RATE of it); the GEMMs' math is unchanged
    passes = _passes_70b(12, 4)
    assert slow.layer[kind].steps["decode"].compute_s - decode.compute_s == pytest.approx(
        (decode.hbm_bytes - passes) / (H100_HBM * MBU) + passes / (H100_HBM * MBU * PASS_RATE), rel=REL)


# ---- prefill: compute-bound at large token counts ------------------------------------------------


def test_llama70b_prefill_layer_is_compute_bound_by_hand() -> None:
    cond = _condition()
    costs = CostModel(cond).candidate(ParallelShape(tp=4, dp=2), 12)
    (kind,) = costs.kinds
    prefill = costs.layer[kind].steps["prefill"]
    flops_s = H100_FP8 * MFU  # fp8 weights run fp8 GEMMs
    attention_s = H100_BF16 * MFU  # attention kernels in bf16
    hbm = H100_HBM * MBU
    b, s, tp = 12, 2048, 4
    tokens = b * s
    gemm_flops = 2 * tokens * (ATTN_70B + FFN_70B) / tp
    # causal attention: s(s+1)/2 query-key pairs, QK^T and PV each 2 * n_h * d FLOPs per pair
    core_flops = b * 2 * N_H * (D + D) * (s * (s + 1) / 2) / tp
    assert gemm_flops / flops_s > (ATTN_70B + FFN_70B) / tp / hbm
    assert core_flops / attention_s > b * s * 2 * N_KV * D / min(tp, N_KV) / hbm  # KV write
    weights = (ATTN_70B + FFN_70B) / tp * 1  # fp8, read once per step after (not during) the math
    passes = _passes_70b(tokens, tp)  # the kernels between the GEMMs: 18% of this layer's time
    assert prefill.compute_s == pytest.approx(
        _math_70b(tokens, tp) / flops_s + weights / hbm + passes / (hbm * PASS_RATE)
        + core_flops / attention_s, rel=REL)
    assert 0.1 < passes / (hbm * PASS_RATE) / prefill.compute_s < 0.25
    size = tokens * H * 2
    assert prefill.comm_s == pytest.approx(2 * _all_reduce_s(size, 4, H100_INTRA), rel=REL)


def test_prefill_time_scales_inversely_with_mfu() -> None:
    base = CostModel(_condition()).candidate(ParallelShape(tp=4, dp=2), 12)
    fast = CostModel(_condition(hardware={"mfu": 0.3})).candidate(ParallelShape(tp=4, dp=2), 12)
    (kind,) = base.kinds
    prefill = base.layer[kind].steps["prefill"]
    # fp8 weights, tp 4, and the passes between the GEMMs: mfu-independent
    weights = ((ATTN_70B + FFN_70B) / 4 * 1 + _passes_70b(12 * 2048, 4) / PASS_RATE) / (H100_HBM * MBU)
    # half the mfu doubles the math (GEMMs and the compute-bound attention core), not the bytes
    assert fast.layer[kind].steps["prefill"].compute_s - prefill.compute_s == pytest.approx(
        prefill.compute_s - weights, rel=REL)


# ---- collectives ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def h100_model() -> CostModel:
    return CostModel(_condition(num_nodes=2))


@pytest.mark.parametrize("n", [2, 4, 8])
def test_all_reduce_intra_node(h100_model: CostModel, n: int) -> None:
    size = 64e6
    cost = h100_model.net.all_reduce(size, n)
    assert cost.comm_s == pytest.approx(_all_reduce_s(size, n, 450e9), rel=REL)
    if n > 2:  # a large message: two-shot (one-shot reads every peer's whole buffer)
        assert cost.comm_s == pytest.approx(2 * 5e-6 + 2 * (n - 1) / n * size / 450e9, rel=REL)
    assert cost.comm_bytes == pytest.approx(2 * (n - 1) / n * size, rel=REL)
    assert cost.compute_s == 0


def test_all_reduce_across_nodes_uses_network_bandwidth(h100_model: CostModel) -> None:
    size = 64e6
    cost = h100_model.net.all_reduce(size, 16)  # 16 ranks > 8 GPUs per node
    assert cost.comm_s == pytest.approx(2 * 15 / 16 * size / 50e9 + 2 * 4 * 5e-6, rel=REL)


@pytest.mark.parametrize("n,bw", [(2, 450e9), (8, 450e9), (16, 50e9)])
def test_all_to_all(h100_model: CostModel, n: int, bw: float) -> None:
    size = 10e6
    cost = h100_model.net.all_to_all(size, n)
    # concurrent pairwise exchange: ceil(log2 n) latency hops
    hops = {2: 1, 4: 2, 8: 3, 16: 4}[n]
    assert cost.comm_s == pytest.approx((n - 1) / n * size / bw + hops * 5e-6, rel=REL)
    assert cost.comm_bytes == pytest.approx((n - 1) / n * size, rel=REL)


def test_all_gather_is_half_an_all_reduce(h100_model: CostModel) -> None:
    size = 8e6
    cost = h100_model.net.all_gather(size, 4)
    assert cost.comm_s == pytest.approx(3 / 4 * size / 450e9 + 3 * 5e-6, rel=REL)
    # the bandwidth term is half a ring all-reduce's
    assert 2 * (cost.comm_s - 3 * 5e-6) == pytest.approx(2 * 3 / 4 * size / 450e9, rel=REL)


def test_point_to_point(h100_model: CostModel) -> None:
    assert h100_model.net.point_to_point(1e6, False).comm_s == pytest.approx(1e6 / 450e9 + 5e-6)
    assert h100_model.net.point_to_point(1e6, True).comm_s == pytest.approx(1e6 / 50e9 + 5e-6)


def test_single_rank_or_empty_collectives_are_free(h100_model: CostModel) -> None:
    assert h100_model.net.all_reduce(1e9, 1).comm_s == 0
    assert h100_model.net.all_to_all(1e9, 1).comm_s == 0
    assert h100_model.net.all_gather(0.0, 8).comm_s == 0


def test_link_choice_by_group_size_vs_gpus_per_node() -> None:
    # A100 node of 4 GPUs: a group of 8 leaves the node; custom bandwidths and alpha
    cond = _condition(gpu="a100-sxm-80gb", weights="bf16", kv="bf16", num_nodes=4,
                      hardware={"gpus_per_node": 4, "intra_node_gb_per_s": 200,
                                "inter_node_gb_per_s": 20, "collective_latency_us": 2})
    model = CostModel(cond)
    assert model.net.link_bytes_per_s(4) == pytest.approx(200e9)
    assert model.net.link_bytes_per_s(2) == pytest.approx(200e9)
    assert model.net.link_bytes_per_s(8) == pytest.approx(20e9)
    assert model.net.all_reduce(1e6, 8).comm_s == pytest.approx(
        _all_reduce_across_s(1e6, 8, 20e9, 2e-6), rel=REL)
    assert model.net.all_reduce(1e6, 4).comm_s == pytest.approx(
        _all_reduce_s(1e6, 4, 200e9, 2e-6), rel=REL)


# ---- MoE decode ----------------------------------------------------------------------------------


def test_mixtral_decode_touches_expected_distinct_experts() -> None:
    # A100, bf16, TP4 attention, EP4 experts, batch 2: each decode step has 2 tokens
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", weights="bf16", kv="bf16", batch=2,
                      input_tokens=1024, output_tokens=512, hardware={"gpus_per_node": 4})
    costs = CostModel(cond).candidate(ParallelShape(tp=4, ep=4, etp=1), 2)
    (kind,) = costs.kinds
    h, n_h, n_kv, d, E, k, f_e = 4096, 32, 8, 128, 8, 2, 14336
    hbm = 2.039e12 * 0.8
    flops_s = 312e12 * 0.6
    attn = h * n_h * d + 2 * h * n_kv * d + n_h * d * h + h
    expert = 3 * h * f_e
    tokens, tp, ep = 2, 4, 4

    def gemm(flops: float, nbytes: float) -> float:
        return flops / flops_s + nbytes / hbm  # math, then weight streaming

    # the row-parallel output projection is n_h d / tp = 1024 deep (physics/gemm.py)
    o_depth = _depth(n_h * d / tp, h)
    qkv = h * n_h * d + 2 * h * n_kv * d
    proj = gemm(2 * tokens * attn / tp * (qkv + n_h * d * h * o_depth) / (qkv + n_h * d * h), attn * 2 / tp)
    ctx = 1024 + 512 / 2
    kv_read = tokens * ctx * 2 * n_kv * d * 2 / min(tp, n_kv)
    core = max(tokens * 2 * n_h * ctx * (d + d) / tp / flops_s, kv_read / hbm)  # attention core
    touched = 1 - (1 - k / E) ** tokens  # = 0.4375: chance an expert gets at least one token
    assert touched == pytest.approx(0.4375)
    # grouped GEMM of the slice (physics/gemm.py): 2 x 2 / 8 = 0.5 tokens per expert; a touched
    # expert holds 0.5 / 0.4375 = 8/7 tokens, computed as a 16-row tile (A100: mma.sync m16);
    # the down projection is 14336 deep, deeper than the hidden size the mfu was calibrated at
    # (1/3 of the FLOPs)
    tile = 16 / (0.5 / touched)
    depth = (1 + 720 / 14336) / (1 + 720 / h)
    math_factor = tile * (2 + depth) / 3
    routed = gemm(2 * tokens * k * expert / 4 * math_factor, (E / ep) * touched * expert * 2)
    router = gemm(2 * tokens * h * E / tp, h * E * 2 / tp)
    # the kernels between the GEMMs (physics/passes.py), bf16 throughout: per token two fused
    # add + RMSNorms and rotary; per routed copy (2 x 2 / 4 = 1 on each GPU) the row permuted, the
    # SwiGLU of the 14336-wide expert and the h-wide output read back; the weighted sum writes a
    # row per token (2 / 4)
    attention_side = tokens * (8 * h * 2 + (n_h / tp + n_kv / tp) * d * 2 * 2)
    rows = tokens * k / ep
    routed_passes = rows * (2 * h * 2 + f_e * (2 * 2 + 2) + h * 2) + tokens / 4 * h * 2
    expected = proj + core + routed + router + (attention_side + routed_passes) / (hbm * PASS_RATE)
    assert costs.layer[kind].steps["decode"].compute_s == pytest.approx(expected, rel=REL)
    # comm: attention all-reduce over tp + DeepEP low-latency dispatch and combine over ep (a
    # decode-only step): each GPU sends its 2/4 tokens' k copies, bf16, all inside the node (NVLink
    # at the fitted efficiency) after the kernel's fixed time (physics/moe_comm.py)
    copies = tokens / 4 * k * h * 2
    a2a = copies / (DEEPEP.nvlink_efficiency * 300e9) + DEEPEP.low_latency_s
    ar = _all_reduce_s(tokens * h * 2, 4, 300e9)
    assert costs.layer[kind].steps["decode"].comm_s == pytest.approx(ar + 2 * a2a, rel=REL)


# ---- sliding window (gpt-oss) --------------------------------------------------------------------


def _gpt_oss_costs(batch: int = 4):
    cond = _condition("gpt-oss-120b", weights="bf16", kv="bf16", batch=batch, input_tokens=2048,
                      output_tokens=512, hardware={"gpus_per_node": 4})
    costs = CostModel(cond).candidate(ParallelShape(tp=4, ep=4, etp=1), batch)
    return {k.window_tokens: costs.layer[k] for k in costs.kinds}


def test_sliding_window_layers_read_less_kv_in_decode() -> None:
    layers = _gpt_oss_costs()
    full, windowed = layers[None], layers[128]
    hbm = 3.35e12 * 0.8
    per_token = 2 * 8 * 64 * 2 / 4  # K+V bytes per token per GPU (bf16, 8 KV heads / tp 4)
    mean_ctx = 2048 + 512 / 2
    assert windowed.steps["decode"].compute_s < full.steps["decode"].compute_s
    # same weights, same FFN; only the KV read differs (both memory-bound)
    expected_gap = 4 * (mean_ctx - 128) * per_token / hbm
    gap = full.steps["decode"].compute_s - windowed.steps["decode"].compute_s
    assert gap == pytest.approx(expected_gap, rel=1e-6)
    assert full.steps["decode"].hbm_bytes - windowed.steps["decode"].hbm_bytes == pytest.approx(
        4 * (mean_ctx - 128) * per_token, rel=REL)


def test_sliding_window_prefill_attention_flops() -> None:
    layers = _gpt_oss_costs()
    full, windowed = layers[None], layers[128]
    s, w, b, n_h, d, tp = 2048, 128, 4, 64, 64, 4
    full_pairs = s * (s + 1) / 2
    window_pairs = w * (w + 1) / 2 + (s - w) * w  # query i sees min(i, w) keys
    per_pair = 2 * n_h * (d + d)
    assert full.steps["prefill"].flops - windowed.steps["prefill"].flops == pytest.approx(
        b * per_pair * (full_pairs - window_pairs) / tp, rel=REL)


# ---- stage composition and serving metrics -------------------------------------------------------


def test_pp2_stage_times_compose_layers_and_extras() -> None:
    cond = _condition()
    costs, stages, _ = evaluate_plan(cond, ParallelShape(tp=4, pp=2), 12, [0, 38, 80])
    (kind,) = costs.kinds
    layer = costs.layer[kind]
    # stage 0: 38 layers + embedding + send to stage 1; stage 1: 42 layers + LM head
    assert stages[0].prefill_s == pytest.approx(
        38 * layer.steps["prefill"].time_s + costs.first_stage.steps["prefill"].time_s
        + costs.transfer.steps["prefill"].time_s, rel=REL)
    assert stages[1].prefill_s == pytest.approx(
        42 * layer.steps["prefill"].time_s + costs.last_stage.steps["prefill"].time_s, rel=REL)
    assert stages[0].decode_s == pytest.approx(
        38 * layer.steps["decode"].time_s + costs.first_stage.steps["decode"].time_s
        + costs.transfer.steps["decode"].time_s, rel=REL)
    assert stages[1].decode_s == pytest.approx(
        42 * layer.steps["decode"].time_s + costs.last_stage.steps["decode"].time_s, rel=REL)


def test_pp2_transfer_is_point_to_point_of_microbatch_hidden_states() -> None:
    cond = _condition()
    costs = CostModel(cond).candidate(ParallelShape(tp=4, pp=2), 12)
    seqs = 6  # 12 sequences in 2 micro-batches
    prefill_bytes = seqs * 2048 * H * 2
    decode_bytes = seqs * H * 2
    assert costs.transfer.steps["prefill"].comm_s == pytest.approx(prefill_bytes / 450e9 + ALPHA, rel=REL)
    assert costs.transfer.steps["decode"].comm_s == pytest.approx(decode_bytes / 450e9 + ALPHA, rel=REL)


def test_pp_transfer_across_nodes_uses_network() -> None:
    cond = _condition(num_nodes=2)
    costs = CostModel(cond).candidate(ParallelShape(tp=8, pp=2), 12)  # replica spans 2 nodes
    assert costs.transfer.steps["decode"].comm_s == pytest.approx(6 * H * 2 / 50e9 + ALPHA, rel=REL)


@pytest.mark.parametrize("batch,pp,mb,seqs", [(12, 2, 2, 6), (5, 2, 2, 3), (1, 2, 1, 1),
                                              (3, 4, 3, 1), (12, 1, 1, 12)])
def test_microbatch_split(batch: int, pp: int, mb: int, seqs: int) -> None:
    cond = _condition(batch=batch)
    costs = CostModel(cond).candidate(ParallelShape(tp=8 // pp, pp=pp), batch)
    assert costs.microbatches == mb
    assert costs.point.sequences_per_microbatch == seqs == math.ceil(batch / mb)


def test_serving_metrics_pp2_recomputed_from_stage_evals() -> None:
    cond = _condition(objective={"latency_weight": 2.0, "throughput_weight": 0.5})
    costs, stages, metrics = evaluate_plan(cond, ParallelShape(tp=4, pp=2), 12, [0, 38, 80])
    p = [s.prefill_s for s in stages]
    dec = [s.decode_s for s in stages]
    m = 2
    ttft = p[0] + p[1] + (m - 1) * max(p)
    tpot = max(dec[0] + dec[1], m * max(dec))
    e2e = ttft + 512 * tpot
    throughput = 1 * 12 * 512 / e2e
    assert metrics.ttft_s == pytest.approx(ttft, rel=REL)
    assert metrics.tpot_s == pytest.approx(tpot, rel=REL)
    assert metrics.e2e_latency_s == pytest.approx(e2e, rel=REL)
    assert metrics.throughput_tokens_per_s == pytest.approx(throughput, rel=REL)
    assert metrics.throughput_tokens_per_s_per_gpu == pytest.approx(throughput / 8, rel=REL)
    # objective = w_lat * e2e / ideal_e2e + w_tput * ideal_throughput / throughput, with roofline
    # ideals over all 8 GPUs: active params = layers' attention (+ input norm) and FFN GEMMs
    # (post norms are not counted as touched weights) + embedding + LM head + final norm
    active = 80 * (ATTN_70B + 3 * H * F) + 2 * V * H + H
    flops_s, hbm, n = H100_FP8 * MFU, H100_HBM * MBU, 8  # fp8 weights: fp8 GEMMs
    ideal_e2e = 2 * active * 2048 / (n * flops_s) + 512 * active * 1 / (n * hbm)
    ideal_tput = flops_s / (2 * active) * n
    assert metrics.objective == pytest.approx(2.0 * e2e / ideal_e2e + 0.5 * ideal_tput / throughput,
                                              rel=REL)


def test_serving_metrics_dp_multiplies_throughput_not_latency() -> None:
    cond = _condition()
    _, st_a, m_a = evaluate_plan(cond, ParallelShape(tp=2, pp=2, dp=2), 12, [0, 40, 80])
    p = [s.prefill_s for s in st_a]
    dec = [s.decode_s for s in st_a]
    e2e = sum(p) + max(p) + 512 * max(sum(dec), 2 * max(dec))
    assert m_a.e2e_latency_s == pytest.approx(e2e, rel=REL)
    assert m_a.throughput_tokens_per_s == pytest.approx(2 * 12 * 512 / e2e, rel=REL)


def test_serving_metrics_pp1_has_no_pipeline_terms() -> None:
    cond = _condition()
    model = CostModel(cond)
    costs = model.candidate(ParallelShape(tp=8), 12)
    stages = evaluate_stages(costs, model.arch.layer_kinds, [0, 80])
    metrics = serving_metrics(cond, costs, stages, Normalizers.of(cond, model))
    assert metrics.ttft_s == pytest.approx(stages[0].prefill_s, rel=REL)
    assert metrics.tpot_s == pytest.approx(stages[0].decode_s, rel=REL)
    assert metrics.throughput_tokens_per_s == pytest.approx(
        12 * 512 / (stages[0].prefill_s + 512 * stages[0].decode_s), rel=REL)


def test_uneven_split_tpot_is_pp_times_slowest_stage() -> None:
    # 10 / 70 layers: the slow stage dominates, so TPOT = 2 x its decode time
    cond = _condition()
    _, stages, metrics = evaluate_plan(cond, ParallelShape(tp=4, pp=2), 12, [0, 10, 80])
    assert stages[1].decode_s > stages[0].decode_s
    assert metrics.tpot_s == pytest.approx(2 * stages[1].decode_s, rel=REL)


# ---- link choice for strided groups --------------------------------------------------------------
# rank order inside a stage: tp fastest, then sp, then attn_dp; EP ranks are etp apart


def test_ep_all_to_all_strided_across_nodes_uses_network() -> None:
    # Mixtral on 2 nodes x 4 A100: tp2 x attn_dp4 = ep4 x etp2 = 8 GPUs per stage.
    # EP group of local rank 0 = {0, 2, 4, 6}: GPUs on node 0 and node 1.
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", weights="bf16", kv="bf16", batch=8,
                      input_tokens=1024, output_tokens=512, num_nodes=2,
                      hardware={"gpus_per_node": 4})
    costs = CostModel(cond).candidate(ParallelShape(tp=2, attn_dp=4, ep=4, etp=2), 8)
    (kind,) = costs.kinds
    h, k = 4096, 2
    attn_tokens = 8 / 4  # one decode token per sequence, 8 sequences over 4 attention-DP groups
    attention = _all_reduce_s(attn_tokens * h * 2, 2, 300e9)  # tp pair: consecutive, one node
    copies = 8 / 8 * k * h * 2  # each GPU's share of the 8 tokens' k copies, bf16
    # DeepEP low-latency kernel (decode): the EP group spans 2 nodes, half the copies stay in the
    # node (NVLink), half cross the network, at once; plus the kernel's fixed time
    a2a = max(copies / 2 / (DEEPEP.low_latency_rdma_efficiency * 25e9),
              copies / 2 / (DEEPEP.nvlink_efficiency * 300e9)) + DEEPEP.low_latency_s
    # expert-TP pair (consecutive, one node) reduces every token routed to its EP rank:
    # 1 - (1 - 1/4)^2 of the 8 tokens
    expert_tp = _all_reduce_s(8 * (1 - 0.75 ** 2) * h * 2, 2, 300e9)
    expected = attention + 2 * a2a + expert_tp
    assert costs.layer[kind].steps["decode"].comm_s == pytest.approx(expected, rel=REL)


def test_sp_decode_all_reduce_strided_across_nodes_uses_network() -> None:
    cond = _condition(num_nodes=2)
    costs = CostModel(cond).candidate(ParallelShape(tp=4, sp=4), 12)
    (kind,) = costs.kinds
    size = 12 * H * 2  # one token per sequence, bf16
    sp_combine = _all_reduce_across_s(size / 4, 4, H100_INTER)  # SP group {0, 4, 8, 12}: two nodes
    tp_reduces = 2 * _all_reduce_s(size, 4, H100_INTRA)  # attention + FFN, tp ranks consecutive
    assert costs.layer[kind].steps["decode"].comm_s == pytest.approx(sp_combine + tp_reduces, rel=REL)
