"""What one GPU holds: its weights, the KV cache of its sequences, workspace, runtime overhead.

Per pipeline stage, per GPU: the weights of its layers (attention split by tp, dense FFN by tp,
routed experts by the expert grid, shared experts by tp), the KV cache of the sequences its
attention group keeps, the embedding on the first stage and the LM head on the last, an activation
workspace on every GPU and the logits buffer on the last stage, plus a runtime overhead (CUDA
context, NCCL buffers, allocator slack). A static batch keeps every sequence's KV cache at full
context and one prefill chunk of workspace. Continuous batching sizes its paged KV cache as the
engines do: max-num-seqs sequences at the mean context (blocks of KV_BLOCK_TOKENS), plus room for
one request at full context; its workspace is one step of max-num-batched-tokens
(docs/design.md, "Cost model").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from solver.physics.architecture import LayerKind
from solver.physics.numeric import Num, ceil_div, vmax, vmin, vwhere
from solver.physics.serving import ServingPoint
from solver.physics.shapes import ParallelShape

if TYPE_CHECKING:
    from solver.physics.cost import CostModel

KV_BLOCK_TOKENS = 16  # a paged KV block (vLLM and SGLang's default page)


def _blocks(tokens: Num) -> Num:
    """Tokens rounded up to whole KV blocks."""
    return ceil_div(tokens, KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS


class MemoryModel:
    """Bytes per GPU, for one condition's cost model (its precisions and expert layouts)."""

    def __init__(self, model: CostModel) -> None:
        self.model = model
        self.condition = model.condition
        self.arch = model.arch

    def layer_weight_bytes(self, kind: LayerKind, shape: ParallelShape) -> Num:
        arch = self.arch
        elements = arch.attention_params_per_layer / shape.tp
        if kind.ffn == "moe":
            layout = self.model.expert_layout(shape.ep)
            elements += layout.slots_per_gpu * arch.params_per_expert / shape.etp
            elements += arch.shared_expert_params_per_layer / shape.tp
            elements += arch.router_params_per_layer + arch.card.hidden_size
        else:
            elements += arch.dense_ffn_params_per_layer / shape.tp
        return elements * self.model.weight_bytes_per_element

    def kv_bytes(self, kind: LayerKind, shape: ParallelShape, point: ServingPoint) -> Num:
        """KV cache of one layer on one GPU: every sequence of a static batch at full context; the
        paged pool of continuous batching (max-num-seqs at the mean context, one at full)."""
        w = self.condition.workload
        full = w.input_tokens + w.output_tokens
        sequences = ceil_div(point.sequences, shape.attn_dp)
        per_token = self.model.kv_bytes_per_token_per_gpu(shape)
        if point.state is None:
            tokens = min(full, kind.window_tokens) if kind.window_tokens else full
            return sequences * ceil_div(tokens, shape.sp) * per_token
        mean = w.input_tokens + w.output_tokens / 2
        if kind.window_tokens:
            mean, full = min(mean, kind.window_tokens), min(full, kind.window_tokens)
        pool = sequences * _blocks(ceil_div(mean, shape.sp)) + _blocks(ceil_div(full, shape.sp)) - _blocks(
            ceil_div(mean, shape.sp))
        return pool * per_token

    def activation_bytes(self, shape: ParallelShape, point: ServingPoint) -> Num:
        """Workspace of one prefill chunk: hidden states, QKV, attention output, FFN intermediates."""
        card, w = self.condition.model, self.condition.workload
        if point.state is None:
            attention_sequences = ceil_div(point.sequences_per_microbatch, shape.attn_dp)
            tokens = vmin(attention_sequences * w.input_tokens / shape.sp, w.prefill_chunk_tokens)
        else:  # one step of the chunk budget, shared by the attention groups
            tokens = point.state.budget / shape.attn_dp
        if card.is_moe:
            width = card.num_experts_per_tok * int(card.moe_intermediate_size or 0) / shape.etp
            if card.first_k_dense_layers:
                width = vmax(width, int(card.intermediate_size or 0) / shape.tp)
        else:
            width = int(card.intermediate_size or 0) / shape.tp
        per_token = 6 * card.hidden_size + 2 * width
        return tokens * per_token * self.model.act_bytes_per_element

    def logits_bytes(self, shape: ParallelShape, point: ServingPoint) -> Num:
        """fp32 logits of one micro-batch's last positions, vocab split over tp."""
        return point.sequences_per_microbatch * self.condition.model.vocab_size / shape.tp * 4.0

    def embedding_weight_bytes(self, shape: ParallelShape) -> Num:
        return self.arch.embedding_params * self.model.weight_bytes_per_element / shape.tp

    def head_weight_bytes(self, shape: ParallelShape) -> Num:
        """LM head (and final norm) weights; a tied head shares the embedding's weights only when
        both sit on the same stage."""
        card = self.condition.model
        params = self.arch.lm_head_params if not card.tie_word_embeddings else self.arch.embedding_params
        weight = params * self.model.weight_bytes_per_element / shape.tp
        tied_here = card.tie_word_embeddings and shape.pp == 1
        norm = card.hidden_size * self.model.weight_bytes_per_element
        return vwhere(tied_here, norm, weight + (norm if card.tie_word_embeddings else 0))
