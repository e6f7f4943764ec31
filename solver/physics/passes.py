"""Memory-bound kernels between the GEMMs: the activation bytes a layer's other kernels move.

A GEMM's own operand traffic runs inside the GEMM, under its math (physics/gemm.py's depth term
carries the output write-back). Every other pass over an activation is a kernel of its own that
streams the tensor through HBM and does almost no math, so it costs bytes / the card's HBM
bandwidth, one after the other with the GEMMs. Bytes per token, from the layer's dataflow as
the serving engines run it (with the fusions they all have):

    norms         two RMSNorms, each with the residual add fused: the sublayer output and the
                  residual read, the new residual and the normalized rows written: 2 x 4 h values
                  (16-bit); every tensor-parallel rank normalizes the whole hidden state
    quantization  when the GEMMs run in FP8/FP4, each GEMM input not produced by a fused kernel is
                  read in 16 bits and written narrow: the attention block's input (h), the
                  attention output before the output projection (heads x v / tp) and the FFN input
                  (h; for an MoE layer, the rows DeepEP dispatches)
    rotary        the rotary part of q and k read and written (MLA: heads x rope + rope)
    activation    SwiGLU of each FFN: the 2 f gate/up outputs read (16-bit), the f-wide product
                  written in the down projection's input precision (its quantization fused)
    routed rows   per routed copy on the expert's GPU: the dispatched row permuted into its
                  expert's contiguous block (read and written), the SwiGLU of its f / etp slice,
                  the down projection's h-wide output read back by the weighted sum of the token's
                  copies, which writes one h-wide row per token

One parameter, fitted at kernel level and nowhere else: these kernels stream at PASS_RATE of the
rate the weights stream at (the card's `memory_bandwidth_utilization`). DeepSeek's published H800
trace (deepseek-ai/profile-data, train.json: the forward kernels of DeepSeek-V3 layers at 4,096
tokens per GPU) gives it: its four kernel classes take 940 us per layer where their bytes at the
card's rate take 694 us (calibration/kernels.py `fit_pass_rate`; per class 0.94 permute, 0.88
SwiGLU, 0.65 norms, 0.62 weighted sum: narrow rows and reductions stream worse than the weights'
long reads). tests/calibration/test_kernel_fits.py, docs/accuracy.md "Large-scale MoE serving".

Numbers may be arrays (one per candidate; physics/numeric.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from solver.physics.numeric import Num

if TYPE_CHECKING:
    from solver.physics.cost import CostModel
    from solver.physics.shapes import ParallelShape

NORM_PASSES = 2 * 4  # two fused add + RMSNorm kernels, each reading and writing two h-wide rows
PASS_RATE = 0.74  # of the weights' streaming rate; calibration.kernels.fit_pass_rate() on the trace


def _narrow(model: CostModel) -> float:
    """Bytes per element a quantization pass moves (16-bit read, narrow write); 0 when the GEMMs
    take 16-bit inputs as they are."""
    wide, narrow = model.hidden_bytes_per_element, model.act_bytes_per_element
    return wide + narrow if narrow < wide else 0.0


def swiglu_bytes(model: CostModel, width: Num) -> Num:
    """SwiGLU of an f-wide FFN (or slice) for one token: 2 f read, f written."""
    return width * (2 * model.hidden_bytes_per_element + min(model.act_bytes_per_element,
                                                             model.hidden_bytes_per_element))


def attention_side_bytes(model: CostModel, shape: ParallelShape) -> Num:
    """Per token of the attention group on one GPU: norms, GEMM-input quantization and rotary."""
    card, arch = model.condition.model, model.arch
    h, wide = card.hidden_size, model.hidden_bytes_per_element
    heads = card.num_attention_heads
    attention_out = heads * arch.v_head_dim / shape.tp
    quantized = (2 * h + attention_out) * _narrow(model)
    if card.is_mla:
        rope = int(card.qk_rope_head_dim or 0)
        rotary = (heads * rope / shape.tp + rope) * 2 * wide
    else:
        d = card.attention_head_dim
        rotary = (heads / shape.tp + card.kv_heads / model.kv_split(shape)) * d * 2 * wide
    return NORM_PASSES * h * wide + quantized + rotary


def dense_ffn_bytes(model: CostModel, shape: ParallelShape) -> Num:
    """Per token on one GPU of a dense FFN: its SwiGLU over f / tp."""
    return swiglu_bytes(model, int(model.condition.model.intermediate_size or 0) / shape.tp)


def shared_expert_bytes(model: CostModel, shape: ParallelShape) -> Num:
    """Per token of the attention group: the shared experts' SwiGLU over their f / tp."""
    card = model.condition.model
    width = card.num_shared_experts * int(card.moe_intermediate_size or 0) / shape.tp
    return swiglu_bytes(model, width)


def routed_row_pieces(model: CostModel, shape: ParallelShape, dispatch_row: float) -> dict[str, Num]:
    """Per routed copy on its expert's GPU: the permute into the expert's block (the dispatched
    row read and written), the SwiGLU of the f / etp slice, the down output read back by the
    weighted sum."""
    card = model.condition.model
    width = int(card.moe_intermediate_size or 0) / shape.etp
    return {"permute": 2 * dispatch_row, "activation": swiglu_bytes(model, width),
            "weighted_sum": card.hidden_size * model.hidden_bytes_per_element}


def routed_row_bytes(model: CostModel, shape: ParallelShape, dispatch_row: float) -> Num:
    """Per routed copy on its expert's GPU: the sum of `routed_row_pieces`."""
    return sum(routed_row_pieces(model, shape, dispatch_row).values())
