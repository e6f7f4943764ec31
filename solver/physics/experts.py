"""The MoE layer as large expert-parallel deployments run it, and two-batch overlap.

Pieces of one MoE layer for one micro-batch, per GPU (the most loaded GPU of the EP group sets
the pace, `imbalance` x the mean):

    routed    the local experts' grouped GEMMs: 2 T k 3 h f / G FLOPs at the calibrated rate times
              the slice's efficiency (physics/gemm.py: tile rows, depth of the f / etp-wide down
              projection); weights of the touched local experts streamed
    shared    shared experts and router on the attention group's tokens (/ tp)
    dispatch  DeepEP's dispatch of the GPU's tokens to their experts (physics/moe_comm.py):
              low-latency kernels in decode-only steps, normal kernels when prompt tokens are in
              the step; FP8 rows when the GEMMs run in FP8
    combine   the same routes back, 16-bit rows
    reduce    expert-TP all-reduce of the partial sums of every token routed to the EP rank

Two-batch overlap (TBO; DeepSeek's and SGLang's large-EP deployments): the step's micro-batch is
split in two halves that alternate, so one half's dispatch runs during the other's attention and
shared expert, and its combine during the other's expert GEMMs. A layer then costs

    2 (max(attention + shared, dispatch) + max(routed + reduce, combine))    (pieces of a half)

i.e. the compute of both halves (each streaming the weights again) plus the communication each
pair fails to hide (the exposed share). In a prefill step DeepEP's normal kernels hold 24 of the
GPU's 132 SMs (moe_comm.NORMAL_KERNEL_SM_SHARE) for the whole overlapped layer: the communication
stream is fed back to back and its kernels spin on their SMs until the data arrives, and the
engines size the compute for the rest (DeepSeek's prefill schedule: "computation 108 SMs,
communication 24 SMs"; SGLang runs every DeepGEMM kernel of a two-batch-overlap prefill on the SMs
DeepEP leaves, `deep_gemm_num_sms = total - DeepEP's`). So the compute of a TBO prefill layer runs
1 / (1 - 24/132) = 1.22x slower throughout. The low-latency kernels (decode) hold no SMs while
compute runs. `policy.two_batch_overlap`: true = always (MoE layers),
false = never, default = where the EP group spans nodes (as those deployments run) and the overlap
shortens the layer. `moe_layer` says where it chose the overlap (MoeLayer.two_batch_overlap);
`two_batch_overlap_steps` asks it for each step of a plan (the launch lines: render/launch_moe.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from solver.physics.collectives import PhaseCost
from solver.physics.gemm import expert_math_factor, swiglu_factor, tile_rows
from solver.physics.moe_comm import (
    NORMAL_KERNEL_SM_SHARE,
    EpSpan,
    Links,
    Routing,
    dispatch_row_bytes,
    exchange,
)
from solver.physics.numeric import Num, is_array, vmax, vwhere
from solver.physics.passes import routed_row_bytes, shared_expert_bytes
from solver.physics.serving import StepMix
from solver.physics.shapes import ParallelShape

if TYPE_CHECKING:
    from solver.physics.cost import CostModel


@dataclass(frozen=True)
class MoeLayer:
    """Attention + MoE of one layer in one step, and whether it runs with two-batch overlap."""

    cost: PhaseCost
    two_batch_overlap: Num  # a bool (an array of them on a grid of candidates)


@dataclass(frozen=True)
class MoePieces:
    routed: PhaseCost
    shared: PhaseCost
    dispatch: PhaseCost
    combine: PhaseCost
    reduce: PhaseCost

    @property
    def total(self) -> PhaseCost:
        return self.routed + self.shared + self.dispatch + self.combine + self.reduce


def moe_pieces(model: CostModel, shape: ParallelShape, mix: StepMix) -> MoePieces:
    card, arch = model.condition.model, model.arch
    tokens = mix.decode_tokens + mix.prefill_tokens
    g = shape.gpus_per_stage
    k, experts = card.num_experts_per_tok, card.num_experts
    layout = model.expert_layout(shape.ep)
    routed_flops = 2 * tokens * k * arch.params_per_expert / g * layout.imbalance
    touched = 1 - (1 - k / experts) ** tokens  # chance an expert receives >= 1 token
    routed_bytes = layout.slots_per_gpu * touched * arch.params_per_expert / shape.etp
    per_expert = tokens * k * layout.imbalance / (shape.ep * layout.slots_per_gpu)
    slice_width = int(card.moe_intermediate_size or 0) / shape.etp
    tile = tile_rows(model.condition.cluster.gpu.architecture)
    factor = expert_math_factor(per_expert, touched, slice_width, card.hidden_size, tile)
    hbm = routed_bytes * model.weight_bytes_per_element
    routed = PhaseCost(compute_s=model.roofline_s(routed_flops * factor, hbm), flops=routed_flops,
                       hbm_bytes=hbm)
    routed = routed + routed_passes(model, shape, tokens, layout.imbalance)
    attn_tokens = (model.group_decode(shape, mix) + model.group_prefill_tokens(shape, mix)) / shape.sp
    shared_params = arch.shared_expert_params_per_layer + arch.router_params_per_layer
    shared_width = card.num_shared_experts * int(card.moe_intermediate_size or 0) / shape.tp
    shared_depth = (arch.shared_expert_params_per_layer * swiglu_factor(shared_width, card.hidden_size)
                    + arch.router_params_per_layer) / shared_params
    shared = model.op(2 * attn_tokens * shared_params / shape.tp,
                      shared_params * model.weight_bytes_per_element / shape.tp, shared_depth)
    shared = shared + model.memory_pass(attn_tokens * shared_expert_bytes(model, shape))
    dispatch, combine = expert_exchange(model, shape, mix, tokens / g * layout.imbalance)
    # an expert-TP group holds partial sums of every token routed to its EP rank (its k copies
    # summed first): 1 - (1 - 1/ep)^k of the tokens; ep = 1 reduces all of them, as dense TP
    reached = tokens * (1 - (1 - 1 / shape.ep) ** k) * layout.imbalance
    partial = reached * card.hidden_size * model.hidden_bytes_per_element
    return MoePieces(routed, shared, dispatch, combine, model.net.all_reduce(partial, shape.etp))


def routed_passes(model: CostModel, shape: ParallelShape, tokens: Num, imbalance: Num) -> PhaseCost:
    """The memory-bound kernels of the routed copies on one GPU (physics/passes.py): each of its
    rows permuted, activated and read back by the weighted sum, which writes a row per token."""
    card = model.condition.model
    rows = tokens * card.num_experts_per_tok * imbalance / shape.ep
    dispatched = dispatch_row_bytes(card.hidden_size, model.act_bytes_per_element)
    row_bytes = routed_row_bytes(model, shape, dispatched)
    written = tokens / shape.gpus_per_stage * card.hidden_size * model.hidden_bytes_per_element
    return model.memory_pass(rows * row_bytes + written)


def expert_exchange(model: CostModel, shape: ParallelShape, mix: StepMix,
                    tokens_per_gpu: Num) -> tuple[PhaseCost, PhaseCost]:
    """Dispatch and combine of `tokens_per_gpu` tokens over the EP group (ranks etp apart)."""
    card, cluster = model.condition.model, model.condition.cluster
    span = EpSpan.of(shape.ep, shape.gpus_per_stage, cluster.gpus_per_node)
    routing = Routing(card.num_experts_per_tok, card.n_group, card.topk_group)
    links = Links(cluster.intra_node_bytes_per_s, cluster.inter_node_bytes_per_s, model.hw.alpha_s)
    decode_only = low_latency_kernels(mix)
    pieces = []
    for row_bytes in (dispatch_row_bytes(card.hidden_size, model.act_bytes_per_element),
                      card.hidden_size * model.hidden_bytes_per_element):
        x = exchange(tokens_per_gpu, row_bytes, span, routing, links, decode_only)
        pieces.append(PhaseCost(comm_s=x.time_s, comm_bytes=x.network_bytes + x.nvlink_bytes)
                      .where((shape.ep > 1) & (tokens_per_gpu > 0)))
    return pieces[0], pieces[1]


def low_latency_kernels(mix: StepMix) -> Num:
    """DeepEP's kernels for a step: low-latency in decode-only steps, normal when it has prompt
    tokens (an array of bools on a grid)."""
    return mix.prefill_tokens <= 0


def halves(mix: StepMix) -> StepMix:
    """One of the two micro-batches of a two-batch-overlap step (prompts may be split)."""
    return replace(mix, decode_seqs=mix.decode_seqs / 2, prefill_tokens=mix.prefill_tokens / 2,
                   prefill_seqs=mix.prefill_seqs / 2, whole_sequences=False)


def overlapped(attention: PhaseCost, half: MoePieces, sm_share: Num) -> PhaseCost:
    """Both halves of a TBO layer: compute in full, on the SMs the communication kernels leave
    (`sm_share` of them held for the whole layer), and the communication each pair leaves exposed."""
    def paired(compute: Num, comm: Num) -> tuple[Num, Num]:
        slowed = compute / (1 - sm_share)
        return slowed, vmax(0.0, comm - slowed)

    front, front_exposed = paired(attention.time_s + half.shared.time_s, half.dispatch.comm_s)
    back, back_exposed = paired(half.routed.time_s + half.reduce.time_s, half.combine.comm_s)
    exposed = front_exposed + back_exposed
    total = attention + half.total
    return PhaseCost(compute_s=2 * (front + back), comm_s=2 * exposed,
                     comm_bytes=2 * total.comm_bytes, flops=2 * total.flops,
                     hbm_bytes=2 * total.hbm_bytes)


def choose(use: Num, a: PhaseCost, b: PhaseCost) -> PhaseCost:
    """a where `use` holds, b elsewhere (per candidate on a grid)."""
    if not is_array(use):
        return a if use else b
    return PhaseCost(*(np.where(use, getattr(a, f.name), getattr(b, f.name)) for f in fields(a)))


def moe_layer(model: CostModel, kind_attention: PhaseCost, half_attention: PhaseCost | None,
              shape: ParallelShape, mix: StepMix) -> MoeLayer:
    """Attention + MoE of one layer and the card's per-layer overhead, serial or with two-batch
    overlap (see the module doc); each overlapped half runs the layer's kernels and pays the
    overhead, as a pipeline micro-batch does."""
    fixed = model.condition.cluster.layer_overhead_s
    serial = kind_attention + moe_pieces(model, shape, mix).total + PhaseCost(compute_s=fixed)
    policy = model.condition.policy.two_batch_overlap
    if policy is False or half_attention is None:
        return MoeLayer(serial, False)
    sm_share = vwhere(low_latency_kernels(mix), 0.0, NORMAL_KERNEL_SM_SHARE)  # normal kernels hold SMs
    tbo = (overlapped(half_attention, moe_pieces(model, shape, halves(mix)), sm_share)
           + PhaseCost(compute_s=2 * fixed))
    use = (mix.decode_tokens + mix.prefill_tokens) >= 2  # a step of one token cannot be split
    if not policy:
        spans_nodes = shape.gpus_per_stage > model.condition.cluster.gpus_per_node
        use = use & spans_nodes & (tbo.time_s < serial.time_s)
    return MoeLayer(choose(use, tbo, serial), use)


def two_batch_overlap_steps(model: CostModel, shape: ParallelShape,
                            mixes: dict[str, StepMix]) -> dict[str, bool]:
    """For each step of a plan (one shape, not a grid): whether its MoE layers run with two-batch
    overlap (moe_layer's choice; a step overlaps when any of its MoE layer kinds does)."""
    kinds = [kind for kind in model.arch.distinct_kinds if kind.ffn == "moe"]
    return {step: any(bool(np.any(model.moe_layer_step(kind, shape, mix).two_batch_overlap))
                      for kind in kinds)
            for step, mix in mixes.items()}
