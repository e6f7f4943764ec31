"""The cost model: time, memory and communication of every layer kind for one (shape, batch).

One cost model serves the CP-SAT tables (integer-scaled in solver/optimize/tables.py), the float evaluator
(solver/physics/evaluate.py), the exhaustive oracle and `check`. Formulas: docs/design.md §3.

Conventions: times in seconds, sizes in bytes, all per GPU unless a name says otherwise. A stage's
time is the sum of its layers' times plus the extras of its position (embedding on the first stage,
LM head on the last, activation transfer to the next stage on all but the last).

Operator time on one GPU = max(FLOPs / (peak * mfu), bytes / (HBM bandwidth * utilization)).
Collectives use the alpha-beta model with ring algorithms.

The same formulas cost one candidate (`candidate`, plain floats: the evaluator, the tables) or every
candidate at once (`candidate_grid`, numpy arrays with one value per candidate: screening). Shape
degrees and batch sizes may therefore be arrays; the few operations that differ (max, min,
conditionals, ceil) go through the helpers below, which keep plain Python arithmetic for scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.inputs.cards import BYTES_PER_ELEMENT
from solver.inputs.condition import Condition
from solver.physics.architecture import Architecture, LayerKind
from solver.physics.collectives import Hardware, Network, PhaseCost
from solver.physics.numeric import Num, ceil_div, is_array, vmax, vmin, vwhere
from solver.physics.shapes import ParallelShape, ShapeGrid


@dataclass(frozen=True)
class LayerCost:
    """Per-GPU cost of one transformer layer of a kind, for one micro-batch."""

    prefill: PhaseCost
    decode: PhaseCost
    weight_bytes: float
    kv_cache_bytes: float


@dataclass(frozen=True)
class CandidateCosts:
    """Everything the planner needs about one (shape, batch) candidate, in floats.

    Built by `CostModel.candidate_grid`, every number is an array over the candidates instead and
    `shape` is a ShapeGrid.
    """

    shape: ParallelShape
    batch_size: int  # concurrent sequences per replica
    prefill_microbatches: int
    decode_microbatches: int
    sequences_per_microbatch: int
    kinds: tuple[LayerKind, ...]
    layer: dict[LayerKind, LayerCost]
    first_stage: LayerCost  # embedding
    last_stage: LayerCost  # final norm + LM head (+ logits workspace in activation bytes)
    transfer: LayerCost  # hidden states to the next stage, per micro-batch (not on the last)
    activation_bytes: float = 0.0  # workspace on every GPU
    last_stage_activation_bytes: float = 0.0  # logits buffer on the last stage
    overhead_bytes: float = 0.0


@dataclass(frozen=True)
class ExpertLayout:
    """How one EP group holds the routed experts: slots per GPU (replicas included) and the most
    loaded GPU's routed-token share relative to the mean (1.0 = uniform)."""

    slots_per_gpu: float
    imbalance: float = 1.0


class CostModel:
    """Analytic roofline + alpha-beta cost model for one condition."""

    def __init__(self, condition: Condition,
                 expert_layouts: dict[int, ExpertLayout] | None = None) -> None:
        self.condition = condition
        self.arch = Architecture(condition.model)
        self.expert_layouts = expert_layouts or {}
        cluster = condition.cluster
        p = condition.precision
        self.weight_bytes_per_element = BYTES_PER_ELEMENT[p.weights]
        self.kv_bytes_per_element = BYTES_PER_ELEMENT[p.kv_cache]
        self.act_bytes_per_element = BYTES_PER_ELEMENT[p.activations]
        # Hidden states between GEMMs (the residual stream: all-reduces, MoE combine, stage
        # transfers) stay 16-bit when the GEMMs run in fp8/fp4; only GEMM inputs (and DeepEP-style
        # MoE dispatch) use the compute precision. docs/accuracy.md, "Physics changes".
        self.hidden_bytes_per_element = max(self.act_bytes_per_element, 2.0)
        peak = cluster.gpu.peak_flops(p.activations)
        assert peak is not None, "condition loader checks the compute precision"
        self.hw = Hardware(
            flops_per_s=peak * cluster.mfu,
            hbm_bytes_per_s=cluster.gpu.hbm_tb_per_s * 1e12 * cluster.memory_bandwidth_utilization,
            intra_bytes_per_s=cluster.intra_node_bytes_per_s,
            inter_bytes_per_s=cluster.inter_node_bytes_per_s,
            alpha_s=cluster.collective_latency_s,
            gpus_per_node=cluster.gpus_per_node,
        )
        self.net = Network(self.hw)

    # ---- primitives --------------------------------------------------------------------------
    def roofline_s(self, flops: Num, hbm_bytes: Num) -> Num:
        return vmax(flops / self.hw.flops_per_s, hbm_bytes / self.hw.hbm_bytes_per_s)

    def _op(self, flops: float, hbm_bytes: float) -> PhaseCost:
        return PhaseCost(compute_s=self.roofline_s(flops, hbm_bytes), flops=flops, hbm_bytes=hbm_bytes)

    def expert_layout(self, ep: Num) -> ExpertLayout:
        """The layout for an EP degree; uniform spread when no placement was computed for it.
        For an array of degrees, the layout's fields are arrays too."""
        if is_array(ep):
            layouts = [self.expert_layout(int(e)) for e in np.unique(ep)]
            index = np.searchsorted(np.unique(ep), ep)
            return ExpertLayout(np.array([x.slots_per_gpu for x in layouts], dtype=float)[index],
                                np.array([x.imbalance for x in layouts], dtype=float)[index])
        if ep in self.expert_layouts:
            return self.expert_layouts[ep]
        return ExpertLayout(slots_per_gpu=self.condition.model.num_experts / ep)

    # ---- micro-batching ------------------------------------------------------------------------
    @staticmethod
    def microbatches(shape: ParallelShape | ShapeGrid, batch_size: Num) -> Num:
        """With pp > 1 the batch is split into pp micro-batches (fewer if the batch is smaller)."""
        return vmax(1, vmin(shape.pp, batch_size))

    # ---- the candidate -------------------------------------------------------------------------
    def candidate_grid(self, shapes: ShapeGrid, batch_sizes: np.ndarray) -> CandidateCosts:
        """Every candidate at once: the same formulas as `candidate`, on arrays."""
        return self.candidate(shapes, batch_sizes)  # type: ignore[arg-type]

    def candidate(self, shape: ParallelShape, batch_size: int) -> CandidateCosts:
        mb = self.microbatches(shape, batch_size)
        seqs = ceil_div(batch_size, mb)
        kinds = self.arch.distinct_kinds
        layer = {kind: self._layer_cost(kind, shape, batch_size, seqs) for kind in kinds}
        return CandidateCosts(
            shape=shape,
            batch_size=batch_size,
            prefill_microbatches=mb,
            decode_microbatches=mb,
            sequences_per_microbatch=seqs,
            kinds=kinds,
            layer=layer,
            first_stage=self._embedding_cost(shape, seqs),
            last_stage=self._head_cost(shape, seqs),
            transfer=LayerCost(
                prefill=self._transfer_cost(shape, seqs),
                decode=self.decode_transfer(shape, seqs),
                weight_bytes=0.0,
                kv_cache_bytes=0.0,
            ),
            activation_bytes=self._activation_bytes(shape, seqs),
            last_stage_activation_bytes=self._logits_bytes(shape, seqs),
            overhead_bytes=self.condition.cluster.runtime_overhead_bytes,
        )

    # ---- token bookkeeping ---------------------------------------------------------------------
    def _attention_sequences(self, shape: ParallelShape, seqs: int) -> int:
        """Sequences of one micro-batch handled by one attention-DP group."""
        return ceil_div(seqs, shape.attn_dp)

    def _context_tokens(self) -> tuple[int, float]:
        """Full context (KV sized for it) and mean decode context (TPOT averaged over outputs)."""
        w = self.condition.workload
        return w.input_tokens + w.output_tokens, w.input_tokens + w.output_tokens / 2

    # ---- one transformer layer -----------------------------------------------------------------
    def _layer_cost(self, kind: LayerKind, shape: ParallelShape, batch: int, seqs: int) -> LayerCost:
        overhead = PhaseCost(compute_s=self.condition.cluster.layer_overhead_s)
        prefill = self._attention(kind, shape, seqs, phase="prefill") + self._ffn(
            kind, shape, seqs, phase="prefill"
        ) + overhead
        decode = self._attention(kind, shape, seqs, phase="decode") + self._ffn(
            kind, shape, seqs, phase="decode"
        ) + overhead
        return LayerCost(
            prefill=prefill,
            decode=decode,
            weight_bytes=self._layer_weight_bytes(kind, shape),
            kv_cache_bytes=self._kv_bytes(kind, shape, batch),
        )

    def _kv_split(self, shape: ParallelShape) -> int:
        """Ranks the KV heads of one attention group are split over (MLA latent: none)."""
        if self.condition.model.is_mla:
            return 1
        return vmin(shape.tp, self.condition.model.kv_heads)

    def kv_bytes_per_token_per_gpu(self, shape: ParallelShape) -> float:
        elements = self.arch.kv_elements_per_token_per_layer
        return elements * self.kv_bytes_per_element / self._kv_split(shape)

    def _kv_bytes(self, kind: LayerKind, shape: ParallelShape, batch: int) -> float:
        """KV cache of every concurrent sequence at full context, one layer, one GPU."""
        full, _ = self._context_tokens()
        tokens = min(full, kind.window_tokens) if kind.window_tokens else full
        sequences = ceil_div(batch, shape.attn_dp)
        return sequences * ceil_div(tokens, shape.sp) * self.kv_bytes_per_token_per_gpu(shape)

    def _attention(self, kind: LayerKind, shape: ParallelShape, seqs: int, phase: str) -> PhaseCost:
        arch, w = self.arch, self.condition.workload
        attn_seqs = self._attention_sequences(shape, seqs)
        proj_bytes = arch.attention_params_per_layer * self.weight_bytes_per_element / shape.tp
        if phase == "prefill":
            tokens = attn_seqs * w.input_tokens / shape.sp
            ctx = self._causal_pairs(w.input_tokens, kind.window_tokens)
            core_flops = attn_seqs * arch.attention_core_flops(1, 1) * ctx / (shape.tp * shape.sp)
            kv_write = attn_seqs * w.input_tokens / shape.sp * self.kv_bytes_per_token_per_gpu(shape)
            proj = self._op(2 * tokens * arch.attention_params_per_layer / shape.tp, proj_bytes)
            core = self._op(core_flops, kv_write)
            core = self._overlap(core, self._sp_kv_exchange(shape, attn_seqs))
        else:
            tokens = attn_seqs / 1.0
            _, mean_ctx = self._context_tokens()
            ctx = min(mean_ctx, kind.window_tokens) if kind.window_tokens else mean_ctx
            kv_read = attn_seqs * ctx / shape.sp * self.kv_bytes_per_token_per_gpu(shape)
            core_flops = attn_seqs * arch.attention_core_flops(1, ctx) / (shape.tp * shape.sp)
            proj = self._op(2 * tokens * arch.attention_params_per_layer / shape.tp, proj_bytes)
            core = self._op(core_flops, kv_read)
            # sequence-parallel decode: partial attention results combined across sp ranks
            hidden = self.condition.model.hidden_size * self.hidden_bytes_per_element
            core = core + self.net.all_reduce(
                tokens * hidden / shape.tp,
                shape.sp,
                span=shape.tp * shape.sp,  # sp ranks are tp apart
            )
        out_bytes = tokens * self.condition.model.hidden_size * self.hidden_bytes_per_element
        return proj + core + self.net.all_reduce(out_bytes, shape.tp)

    @staticmethod
    def _causal_pairs(tokens: int, window: int | None) -> float:
        """Query-key pairs of causal attention over `tokens`, optionally windowed."""
        if window is None or window >= tokens:
            return tokens * (tokens + 1) / 2
        return window * (window + 1) / 2 + (tokens - window) * window

    def _overlap(self, compute: PhaseCost, comm: PhaseCost) -> PhaseCost:
        """Ring attention overlaps the KV exchange with compute: the longer one counts."""
        if not is_array(comm.comm_s) and comm.comm_s == 0:
            return compute
        hidden = vmin(compute.compute_s, comm.comm_s)
        return PhaseCost(
            compute_s=compute.compute_s,
            comm_s=comm.comm_s - hidden,
            comm_bytes=comm.comm_bytes,
            flops=compute.flops,
            hbm_bytes=compute.hbm_bytes,
        )

    def _sp_kv_exchange(self, shape: ParallelShape, attn_seqs: int) -> PhaseCost:
        w = self.condition.workload
        kv_total = attn_seqs * w.input_tokens * self.kv_bytes_per_token_per_gpu(shape)
        group = shape.tp * shape.sp  # the sp ranks of one attention group are tp apart
        moved = (shape.sp - 1) / shape.sp * kv_total
        bw = self.net.link_bytes_per_s(group)
        return PhaseCost(comm_s=moved / bw + (shape.sp - 1) * self.hw.alpha_s,
                         comm_bytes=moved).where(shape.sp > 1)

    def _ffn(self, kind: LayerKind, shape: ParallelShape, seqs: int, phase: str) -> PhaseCost:
        if kind.ffn == "moe":
            return self._moe(shape, seqs, phase)
        card = self.condition.model
        attn_seqs = self._attention_sequences(shape, seqs)
        tokens = attn_seqs * (self.condition.workload.input_tokens / shape.sp if phase == "prefill" else 1)
        params = 3 * card.hidden_size * int(card.intermediate_size or 0)
        gemm = self._op(2 * tokens * params / shape.tp, params * self.weight_bytes_per_element / shape.tp)
        out_bytes = tokens * card.hidden_size * self.hidden_bytes_per_element
        return gemm + self.net.all_reduce(out_bytes, shape.tp)

    def _moe(self, shape: ParallelShape, seqs: int, phase: str) -> PhaseCost:
        """Routed experts spread uniformly over the expert grid; dispatch/combine all-to-all."""
        card, arch, w = self.condition.model, self.arch, self.condition.workload
        tokens_per_seq = w.input_tokens if phase == "prefill" else 1
        tokens = seqs * tokens_per_seq  # all tokens of the micro-batch meet in the expert grid
        g = shape.gpus_per_stage
        k, experts = card.num_experts_per_tok, card.num_experts
        layout = self.expert_layout(shape.ep)
        # the most loaded GPU of the EP group sets the pace
        routed_flops = 2 * tokens * k * arch.params_per_expert / g * layout.imbalance
        touched = 1 - (1 - k / experts) ** tokens  # chance an expert receives >= 1 token
        routed_bytes = layout.slots_per_gpu * touched * arch.params_per_expert / shape.etp
        routed = self._op(routed_flops, routed_bytes * self.weight_bytes_per_element)
        attn_tokens = self._attention_sequences(shape, seqs) * tokens_per_seq / shape.sp
        shared_params = arch.shared_expert_params_per_layer + arch.router_params_per_layer
        shared = self._op(
            2 * attn_tokens * shared_params / shape.tp,
            shared_params * self.weight_bytes_per_element / shape.tp,
        )
        # each GPU dispatches its share of the tokens' k copies and receives the results back
        per_gpu = tokens / g * k * card.hidden_size * self.act_bytes_per_element
        combined = per_gpu * self.hidden_bytes_per_element / self.act_bytes_per_element
        # ep ranks are etp apart; the most loaded GPU receives `imbalance` x the mean
        dispatch = self.net.all_to_all(per_gpu * layout.imbalance, shape.ep, span=g)
        exchange = dispatch + self.net.all_to_all(combined * layout.imbalance, shape.ep, span=g)
        expert_tp = self.net.all_reduce(combined, shape.etp)
        return routed + shared + exchange + expert_tp

    # ---- memory --------------------------------------------------------------------------------
    def _layer_weight_bytes(self, kind: LayerKind, shape: ParallelShape) -> float:
        arch = self.arch
        elements = arch.attention_params_per_layer / shape.tp
        if kind.ffn == "moe":
            elements += self.expert_layout(shape.ep).slots_per_gpu * arch.params_per_expert / shape.etp
            elements += arch.shared_expert_params_per_layer / shape.tp
            elements += arch.router_params_per_layer + arch.card.hidden_size
        else:
            elements += arch.dense_ffn_params_per_layer / shape.tp
        return elements * self.weight_bytes_per_element

    def _activation_bytes(self, shape: ParallelShape, seqs: int) -> float:
        """Workspace of one prefill chunk: hidden states, QKV, attention output, FFN intermediates."""
        card, w = self.condition.model, self.condition.workload
        tokens = vmin(self._attention_sequences(shape, seqs) * w.input_tokens / shape.sp,
                      w.prefill_chunk_tokens)
        if card.is_moe:
            width = card.num_experts_per_tok * int(card.moe_intermediate_size or 0) / shape.etp
            if card.first_k_dense_layers:
                width = vmax(width, int(card.intermediate_size or 0) / shape.tp)
        else:
            width = int(card.intermediate_size or 0) / shape.tp
        per_token = 6 * card.hidden_size + 2 * width
        return tokens * per_token * self.act_bytes_per_element

    def _logits_bytes(self, shape: ParallelShape, seqs: int) -> float:
        """fp32 logits of one micro-batch's last positions, vocab split over tp."""
        return seqs * self.condition.model.vocab_size / shape.tp * 4.0

    # ---- extras --------------------------------------------------------------------------------
    def _embedding_cost(self, shape: ParallelShape, seqs: int) -> LayerCost:
        card, w = self.condition.model, self.condition.workload
        weight = self.arch.embedding_params * self.weight_bytes_per_element / shape.tp
        prefill_tokens = seqs * w.input_tokens
        h_bytes = card.hidden_size * self.hidden_bytes_per_element
        prefill = self._op(0, prefill_tokens * h_bytes) + self.net.all_reduce(
            prefill_tokens * h_bytes / shape.attn_dp / shape.sp, shape.tp
        )
        decode = self._op(0, seqs * h_bytes) + self.net.all_reduce(seqs * h_bytes / shape.attn_dp, shape.tp)
        return LayerCost(prefill=prefill, decode=decode, weight_bytes=weight, kv_cache_bytes=0.0)

    def _head_cost(self, shape: ParallelShape, seqs: int) -> LayerCost:
        """Final norm + LM head for the last position of each sequence; vocab split over tp."""
        params = self.arch.lm_head_params if not self.condition.model.tie_word_embeddings else (
            self.arch.embedding_params
        )
        weight = params * self.weight_bytes_per_element / shape.tp
        # attention-DP groups each compute the logits of their own sequences
        rows = ceil_div(seqs, shape.attn_dp)
        gemm = self._op(2 * rows * params / shape.tp, weight)
        gather = self.net.all_gather(rows * self.condition.model.vocab_size * 4.0, shape.tp)
        # a tied head shares the embedding's weights only when both sit on the same stage
        tied_here = self.condition.model.tie_word_embeddings and shape.pp == 1
        norm = self.condition.model.hidden_size * self.weight_bytes_per_element
        stored = vwhere(tied_here, norm, weight + (norm if self.condition.model.tie_word_embeddings else 0))
        return LayerCost(prefill=gemm + gather, decode=gemm + gather, weight_bytes=stored,
                         kv_cache_bytes=0.0)

    def _transfer_cost(self, shape: ParallelShape, seqs: int) -> PhaseCost:
        """Hidden states of one micro-batch sent to the next stage (prefill tokens; decode: 1/seq)."""
        card, w = self.condition.model, self.condition.workload
        crosses = shape.gpus_per_replica > self.hw.gpus_per_node
        senders = vmax(1, shape.gpus_per_stage // shape.tp)  # tp ranks hold copies; send once
        size = seqs * w.input_tokens * card.hidden_size * self.hidden_bytes_per_element / senders
        return self.net.point_to_point(size, crosses).where(shape.pp > 1)

    def decode_transfer(self, shape: ParallelShape, seqs: int) -> PhaseCost:
        card = self.condition.model
        crosses = shape.gpus_per_replica > self.hw.gpus_per_node
        senders = vmax(1, shape.gpus_per_stage // shape.tp)
        size = seqs * card.hidden_size * self.hidden_bytes_per_element / senders
        return self.net.point_to_point(size, crosses).where(shape.pp > 1)
