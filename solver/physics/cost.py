"""The cost model: time, memory and communication of every layer kind for one candidate.

A candidate is a parallel shape and a load (physics/serving.py: a static batch, or continuous
batching at a concurrency, chunk budget and utilization); its serving point names the step kinds
an engine runs (a static batch: prefill and decode). Each step kind is a `StepMix` (decoding
sequences and prompt tokens of one micro-batch's forward pass), priced here per layer kind and per
stage position. One cost model serves the CP-SAT tables (integer-scaled in optimize/tables.py), the
float evaluator (physics/evaluate.py), the exhaustive oracle and `check`. Formulas:
docs/design.md, "Cost model".

Conventions: times in seconds, sizes in bytes, all per GPU unless a name says otherwise. A stage's
time is the sum of its layers' times plus the extras of its position (embedding on the first stage,
LM head on the last, activation transfer to the next stage on all but the last).

A GEMM on one GPU takes FLOPs / (peak * mfu) + bytes / (HBM bandwidth * utilization): streaming
the weights and the tensor-core math do not overlap, which is the same as an mfu that saturates in
the GEMM's tokens, mfu m / (m + m_ridge), with its half point at the ridge m_ridge (where the math
takes as long as reading the weights; docs/accuracy.md, "GEMM size"). The attention core keeps
max(FLOPs / (peak * mfu), bytes / (HBM bandwidth * utilization)).
Collectives: physics/collectives.py.

The same formulas cost one candidate (`candidate`, plain numbers: the evaluator, the tables) or every
candidate at once (`candidate_grid`, numpy arrays with one value per candidate: screening); the
few operations that differ go through physics/numeric.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.inputs.cards import BYTES_PER_ELEMENT
from solver.inputs.condition import Condition
from solver.physics.architecture import Architecture, LayerKind
from solver.physics.collectives import Hardware, Network, PhaseCost
from solver.physics.experts import MoeLayer, halves, moe_layer, moe_pieces
from solver.physics.gemm import projections_factor, swiglu_factor
from solver.physics.memory import MemoryModel
from solver.physics.numeric import Num, ceil_div, distinct, is_array, vmax, vmin
from solver.physics.passes import PASS_RATE, attention_side_bytes, dense_ffn_bytes
from solver.physics.points import Load, serving_point
from solver.physics.serving import ServingPoint, StaticLoad, StepMix
from solver.physics.shapes import ParallelShape, ShapeGrid
from solver.physics.speculative import draft_cost, mtp_kv_bytes, mtp_weight_bytes


@dataclass(frozen=True)
class LayerCost:
    """Per-GPU cost of one transformer layer of a kind (or a stage extra): its time in every step
    kind, for one micro-batch, and the memory it holds."""

    steps: dict[str, PhaseCost]
    weight_bytes: Num
    kv_cache_bytes: Num


@dataclass(frozen=True)
class CandidateCosts:
    """Everything the planner needs about one candidate, in floats.

    Built by `CostModel.candidate_grid`, every number is an array over the candidates instead and
    `shape` is a ShapeGrid.
    """

    shape: ParallelShape
    point: ServingPoint
    kinds: tuple[LayerKind, ...]
    layer: dict[LayerKind, LayerCost]
    first_stage: LayerCost  # embedding
    last_stage: LayerCost  # final norm + LM head (+ logits workspace in activation bytes)
    transfer: LayerCost  # hidden states to the next stage, per micro-batch (not on the last)
    activation_bytes: Num = 0.0  # workspace on every GPU
    last_stage_activation_bytes: Num = 0.0  # logits buffer on the last stage
    overhead_bytes: float = 0.0

    @property
    def batch_size(self) -> Num:
        """Sequences per replica: the static batch, or continuous batching's max-num-seqs."""
        return self.point.sequences

    @property
    def microbatches(self) -> Num:
        return self.point.microbatches


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
        peak = cluster.gpu.peak_flops(condition.compute_precision)
        attention_peak = cluster.gpu.peak_flops(p.attention)
        assert peak is not None and attention_peak is not None, "the loader checks the precisions"
        self.hw = Hardware(
            flops_per_s=peak * cluster.mfu,
            attention_flops_per_s=attention_peak * cluster.mfu,
            hbm_bytes_per_s=cluster.gpu.hbm_tb_per_s * 1e12 * cluster.memory_bandwidth_utilization,
            intra_bytes_per_s=cluster.intra_node_bytes_per_s * cluster.link_bandwidth_utilization,
            inter_bytes_per_s=cluster.inter_node_bytes_per_s,
            alpha_s=cluster.collective_latency_s,
            gpus_per_node=cluster.gpus_per_node,
            nvlink=cluster.gpu.intra_node_link == "nvlink",
        )
        self.net = Network(self.hw)
        self.memory = MemoryModel(self)

    # ---- primitives --------------------------------------------------------------------------
    def roofline_s(self, flops: Num, hbm_bytes: Num) -> Num:
        """A GEMM: its math and its weight (and activation) traffic, one after the other."""
        return flops / self.hw.flops_per_s + hbm_bytes / self.hw.hbm_bytes_per_s

    def op(self, flops: Num, hbm_bytes: Num, depth: Num = 1.0) -> PhaseCost:
        """A GEMM-like operator at the compute precision's rate; `depth` is the time per FLOP of
        its K relative to a hidden-deep GEMM (physics/gemm.py)."""
        return PhaseCost(compute_s=self.roofline_s(flops * depth, hbm_bytes), flops=flops,
                         hbm_bytes=hbm_bytes)

    def memory_pass(self, hbm_bytes: Num) -> PhaseCost:
        """A memory-bound kernel between the GEMMs (physics/passes.py): its bytes at PASS_RATE of
        the weights' streaming rate."""
        return PhaseCost(compute_s=hbm_bytes / (self.hw.hbm_bytes_per_s * PASS_RATE), flops=0.0,
                         hbm_bytes=hbm_bytes)

    def attention_op(self, flops: Num, hbm_bytes: Num) -> PhaseCost:
        """The attention core (QK^T, PV) at the attention kernels' rate."""
        time = vmax(flops / self.hw.attention_flops_per_s, hbm_bytes / self.hw.hbm_bytes_per_s)
        return PhaseCost(compute_s=time, flops=flops, hbm_bytes=hbm_bytes)

    def expert_layout(self, ep: Num) -> ExpertLayout:
        """The layout for an EP degree; uniform spread when no placement was computed for it.
        For an array of degrees, the layout's fields are arrays too."""
        if is_array(ep):
            degrees, index = distinct(np.asarray(ep).reshape(-1))
            layouts = [self.expert_layout(int(e)) for e in degrees]
            index = index.reshape(np.shape(ep))
            return ExpertLayout(np.array([x.slots_per_gpu for x in layouts], dtype=float)[index],
                                np.array([x.imbalance for x in layouts], dtype=float)[index])
        if ep in self.expert_layouts:
            return self.expert_layouts[ep]
        return ExpertLayout(slots_per_gpu=self.condition.model.num_experts / ep)

    # ---- the candidate -------------------------------------------------------------------------
    def candidate_grid(self, shapes: ShapeGrid, load: Load | np.ndarray) -> CandidateCosts:
        """Every candidate at once: the same formulas as `candidate`, on arrays."""
        return self.candidate(shapes, load)  # type: ignore[arg-type]

    def candidate(self, shape: ParallelShape, load: Load | Num) -> CandidateCosts:
        """One candidate; a number (or array) for `load` is a static batch."""
        if not isinstance(load, Load):
            load = StaticLoad(load)
        point = serving_point(load, shape.pp, self.condition)
        mixes = point.mixes
        kinds = self.arch.distinct_kinds
        layer = {kind: LayerCost({s: self.layer_step(kind, shape, mix) for s, mix in mixes.items()},
                                 self.memory.layer_weight_bytes(kind, shape),
                                 self.memory.kv_bytes(kind, shape, point))
                 for kind in kinds}
        first = {s: self.embedding(shape, mix) for s, mix in mixes.items()}
        last = {s: self.head(shape, mix) for s, mix in mixes.items()}
        transfer = {s: self.transfer(shape, mix) for s, mix in mixes.items()}
        return CandidateCosts(
            shape=shape,
            point=point,
            kinds=kinds,
            layer=layer,
            first_stage=LayerCost(first, self.memory.embedding_weight_bytes(shape), 0.0),
            last_stage=LayerCost(last, self.memory.head_weight_bytes(shape)
                                 + mtp_weight_bytes(self, shape), mtp_kv_bytes(self, shape, point)),
            transfer=LayerCost(transfer, 0.0, 0.0),
            activation_bytes=self.memory.activation_bytes(shape, point),
            last_stage_activation_bytes=self.memory.logits_bytes(shape, point),
            overhead_bytes=self.condition.cluster.runtime_overhead_bytes,
        )

    # ---- tokens per attention group ----------------------------------------------------------
    @staticmethod
    def per_group(value: Num, shape: ParallelShape, mix: StepMix) -> Num:
        """Sequences of a micro-batch handled by one attention-DP group: whole sequences in a
        static batch, steady-state averages (split evenly) otherwise."""
        return ceil_div(value, shape.attn_dp) if mix.whole_sequences else value / shape.attn_dp

    def group_decode(self, shape: ParallelShape, mix: StepMix) -> Num:
        """Decode query tokens of one attention group (sequences x verified positions)."""
        return self.per_group(mix.decode_seqs, shape, mix) * mix.decode_positions

    def group_prefill_tokens(self, shape: ParallelShape, mix: StepMix) -> Num:
        """Prompt tokens one attention group prefills (whole prompts in a static batch)."""
        if mix.whole_sequences:
            return self.per_group(mix.prefill_seqs, shape, mix) * mix.prompt_tokens
        return mix.prefill_tokens / shape.attn_dp

    def group_tokens(self, shape: ParallelShape, mix: StepMix) -> Num:
        """Query tokens through one GPU's attention projections and dense FFN."""
        return self.group_decode(shape, mix) + self.group_prefill_tokens(shape, mix) / shape.sp

    # ---- one transformer layer -----------------------------------------------------------------
    def layer_step(self, kind: LayerKind, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        if kind.ffn == "moe":  # with two-batch overlap where it applies (physics/experts.py)
            return self.moe_layer_step(kind, shape, mix).cost
        fixed = PhaseCost(compute_s=self.condition.cluster.layer_overhead_s)
        return self.attention(kind, shape, mix) + self.ffn(kind, shape, mix) + fixed

    def moe_layer_step(self, kind: LayerKind, shape: ParallelShape, mix: StepMix) -> MoeLayer:
        """An MoE layer's attention and experts with the per-layer overhead, and whether it runs
        with two-batch overlap."""
        tbo_off = self.condition.policy.two_batch_overlap is False
        half = None if tbo_off else self.attention(kind, shape, halves(mix))
        return moe_layer(self, self.attention(kind, shape, mix), half, shape, mix)

    def kv_split(self, shape: ParallelShape) -> Num:
        """Ranks the KV heads of one attention group are split over (MLA latent: none)."""
        if self.condition.model.is_mla:
            return 1
        return vmin(shape.tp, self.condition.model.kv_heads)

    def kv_bytes_per_token_per_gpu(self, shape: ParallelShape) -> Num:
        elements = self.arch.kv_elements_per_token_per_layer
        return elements * self.kv_bytes_per_element / self.kv_split(shape)

    def attention(self, kind: LayerKind, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        arch, hidden = self.arch, self.condition.model.hidden_size * self.hidden_bytes_per_element
        tokens = self.group_tokens(shape, mix)
        proj_bytes = arch.attention_params_per_layer * self.weight_bytes_per_element / shape.tp
        depth = projections_factor(arch.attention_gemms, shape.tp, self.condition.model.hidden_size)
        cost = self.op(2 * tokens * arch.attention_params_per_layer / shape.tp, proj_bytes, depth)
        cost = cost + self.memory_pass(tokens * attention_side_bytes(self, shape))  # physics/passes.py
        cost = cost + self.prefill_attention(kind, shape, mix)
        decode = self.group_decode(shape, mix)
        sequences = self.per_group(mix.decode_seqs, shape, mix)  # each reads its KV once
        ctx = mix.decode_context
        ctx = vmin(ctx, kind.window_tokens) if kind.window_tokens else ctx
        core = self.attention_op(decode * arch.decode_attention_core_flops(1, ctx) / (shape.tp * shape.sp),
                                 sequences * ctx / shape.sp * self.kv_bytes_per_token_per_gpu(shape))
        # sequence-parallel decode: partial attention results combined across sp ranks
        core = core + self.net.all_reduce(decode * hidden / shape.tp, shape.sp, span=shape.tp * shape.sp)
        cost = cost + core.where(decode > 0)
        return cost + self.net.all_reduce(tokens * hidden, shape.tp)

    def prefill_attention(self, kind: LayerKind, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        """Causal attention of the step's prompt tokens: each prompt's query-key pairs, the KV it
        writes, its earlier chunks' KV read back; ring attention's KV exchange overlapped."""
        arch = self.arch
        prefill_tokens = self.group_prefill_tokens(shape, mix)
        prompts = prefill_tokens / mix.prompt_tokens
        pairs = self.causal_pairs(mix.prompt_tokens, kind.window_tokens)
        flops = prompts * arch.attention_core_flops(1, 1) * pairs / (shape.tp * shape.sp)
        # KV written for the chunk, plus the prompt's earlier chunks read back (k - 1) / 2 times
        kv_tokens = prefill_tokens / shape.sp * (1 + (mix.prefill_chunks - 1) / 2)
        core = self.attention_op(flops, kv_tokens * self.kv_bytes_per_token_per_gpu(shape))
        return self.overlap(core, self.sp_kv_exchange(shape, prefill_tokens)).where(prefill_tokens > 0)

    @staticmethod
    def causal_pairs(tokens: int, window: int | None) -> float:
        """Query-key pairs of causal attention over `tokens`, optionally windowed."""
        if window is None or window >= tokens:
            return tokens * (tokens + 1) / 2
        return window * (window + 1) / 2 + (tokens - window) * window

    @staticmethod
    def overlap(compute: PhaseCost, comm: PhaseCost) -> PhaseCost:
        """Ring attention overlaps the KV exchange with compute: the longer one counts."""
        if not is_array(comm.comm_s) and comm.comm_s == 0:
            return compute
        hidden = vmin(compute.compute_s, comm.comm_s)
        return PhaseCost(compute_s=compute.compute_s, comm_s=comm.comm_s - hidden,
                         comm_bytes=comm.comm_bytes, flops=compute.flops, hbm_bytes=compute.hbm_bytes)

    def sp_kv_exchange(self, shape: ParallelShape, prefill_tokens: Num) -> PhaseCost:
        """Ring attention: each sp rank passes its KV of the group's prompt tokens around."""
        kv_total = prefill_tokens * self.kv_bytes_per_token_per_gpu(shape)
        moved = (shape.sp - 1) / shape.sp * kv_total
        bw = self.net.link_bytes_per_s(shape.tp * shape.sp)  # the sp ranks of a group are tp apart
        return PhaseCost(comm_s=moved / bw + (shape.sp - 1) * self.hw.alpha_s,
                         comm_bytes=moved).where(shape.sp > 1)

    def ffn(self, kind: LayerKind, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        if kind.ffn == "moe":
            return self.moe(shape, mix)
        card = self.condition.model
        tokens = self.group_tokens(shape, mix)
        params = 3 * card.hidden_size * int(card.intermediate_size or 0)
        depth = swiglu_factor(int(card.intermediate_size or 0) / shape.tp, card.hidden_size)
        gemm = self.op(2 * tokens * params / shape.tp, params * self.weight_bytes_per_element / shape.tp,
                       depth)
        gemm = gemm + self.memory_pass(tokens * dense_ffn_bytes(self, shape))  # SwiGLU: physics/passes.py
        out_bytes = tokens * card.hidden_size * self.hidden_bytes_per_element
        return gemm + self.net.all_reduce(out_bytes, shape.tp)

    def moe(self, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        """Routed experts over the expert grid (every token of the micro-batch meets there),
        DeepEP dispatch/combine, expert-TP all-reduce: physics/experts.py."""
        return moe_pieces(self, shape, mix).total

    # ---- extras --------------------------------------------------------------------------------
    def finishing_rows(self, shape: ParallelShape, mix: StepMix) -> Num:
        """Sequences producing a token this step, per attention group (logits rows)."""
        if mix.whole_sequences:
            return self.per_group(mix.decode_tokens + mix.prefill_seqs, shape, mix)
        return self.per_group(mix.decode_tokens + mix.prefill_tokens / mix.prompt_tokens, shape, mix)

    @staticmethod
    def step_prompt_tokens(mix: StepMix) -> Num:
        """Prompt tokens of the whole micro-batch in this step."""
        return mix.prefill_seqs * mix.prompt_tokens if mix.whole_sequences else mix.prefill_tokens

    def embedding(self, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        h_bytes = self.condition.model.hidden_size * self.hidden_bytes_per_element
        prefill = self.step_prompt_tokens(mix)
        reduced = mix.decode_tokens * h_bytes / shape.attn_dp + prefill * h_bytes / shape.attn_dp / shape.sp
        return self.op(0, (mix.decode_tokens + prefill) * h_bytes) + self.net.all_reduce(reduced, shape.tp)

    def head(self, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        """Final norm + LM head for the last position of each finishing sequence; vocab over tp."""
        card = self.condition.model
        params = self.arch.lm_head_params if not card.tie_word_embeddings else self.arch.embedding_params
        rows = self.finishing_rows(shape, mix)
        gemm = self.op(2 * rows * params / shape.tp, params * self.weight_bytes_per_element / shape.tp)
        logits = gemm + self.net.all_gather(rows * card.vocab_size * 4.0, shape.tp)
        return logits + draft_cost(self, shape, mix)  # MTP drafts (physics/speculative.py)

    def transfer(self, shape: ParallelShape, mix: StepMix) -> PhaseCost:
        """Hidden states of the micro-batch's tokens sent to the next stage."""
        card = self.condition.model
        crosses = shape.gpus_per_replica > self.hw.gpus_per_node
        senders = vmax(1, shape.gpus_per_stage // shape.tp)  # tp ranks hold copies; send once
        tokens = mix.decode_tokens + self.step_prompt_tokens(mix)
        size = tokens * card.hidden_size * self.hidden_bytes_per_element / senders
        return self.net.point_to_point(size, crosses).where(shape.pp > 1)

