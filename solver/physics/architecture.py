"""Derived quantities of a model card: parameters per layer kind, FLOPs per token, KV bytes per token.

Everything here is per model (not per GPU) and in elements or FLOPs; bytes appear only where a
precision is passed in. Formulas follow docs/design.md §3 (GQA, MLA, SwiGLU FFN, MoE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from solver.inputs.cards import ModelCard


@dataclass(frozen=True)
class LayerKind:
    """Layers with identical cost: which FFN they run and whether attention is windowed."""

    ffn: str  # "dense" | "moe"
    window_tokens: int | None  # sliding-window length, None for full attention

    @property
    def label(self) -> str:
        window = f"+window{self.window_tokens}" if self.window_tokens else ""
        return f"{self.ffn}{window}"


@dataclass(frozen=True)
class LayerPattern:
    """Which layers have which kind, in closed form (the rules of `Architecture.layer_kind`):
    MoE FFN from layer `first_moe` on (None: dense model), windowed attention on the layers
    i % `window_every` == 0 (None: no windowed layers).

    The CP-SAT model counts the layers of each kind before a stage boundary b with these formulas
    instead of arrays indexed by b, so its size does not grow with the number of layers.
    """

    first_moe: int | None
    window_every: int | None

    def counts_before(self, b: Any, clip: Callable[[Any], Any] = lambda x: max(0, x),
                      ceil_div: Callable[[Any, int], Any] = lambda x, d: -(-x // d),
                      b_range: tuple[int, int] | None = None) -> dict[tuple[str, bool], Any]:
        """Layers of each (ffn, windowed) combination among layers [0, b).

        `clip` (max(0, x)) and `ceil_div` are the only non-linear steps: integers by default; the
        CP-SAT model passes versions that add a variable and its defining constraint, and the
        range b can take (`b_range`), which makes the clip linear unless b can fall on both sides
        of the first MoE layer.
        """
        lo, hi = b_range if b_range is not None else (b, b)
        windowed: Any = 0 if self.window_every is None else ceil_div(b, self.window_every)
        moe: Any = 0
        windowed_moe: Any = 0
        if self.first_moe is not None and hi > self.first_moe:
            before = 0 if self.window_every is None else -(-self.first_moe // self.window_every)
            if lo >= self.first_moe:  # every MoE layer from first_moe up to b is before b
                moe, windowed_moe = b - self.first_moe, windowed - before
            else:
                moe = clip(b - self.first_moe)
                windowed_moe = 0 if self.window_every is None else clip(windowed - before)
        return {("moe", True): windowed_moe, ("moe", False): moe - windowed_moe,
                ("dense", True): windowed - windowed_moe,
                ("dense", False): b - moe - windowed + windowed_moe}

    @staticmethod
    def key(kind: LayerKind) -> tuple[str, bool]:
        return kind.ffn, kind.window_tokens is not None


@dataclass(frozen=True)
class Architecture:
    card: ModelCard

    # ---- attention -------------------------------------------------------------------------
    @property
    def qk_head_dim(self) -> int:
        c = self.card
        if c.is_mla:
            return int(c.qk_nope_head_dim) + int(c.qk_rope_head_dim)  # type: ignore[arg-type]
        return c.attention_head_dim

    @property
    def v_head_dim(self) -> int:
        c = self.card
        return int(c.v_head_dim) if c.is_mla else c.attention_head_dim  # type: ignore[arg-type]

    @cached_property
    def attention_params_per_layer(self) -> int:
        """Projection weights of one attention block (`attention_gemms`), plus its norms: the
        input norm and, with MLA, the norms of the compressed kv (and q) latents."""
        c = self.card
        norms = c.hidden_size
        if c.is_mla:
            norms += int(c.kv_lora_rank) + (c.q_lora_rank or 0)  # type: ignore[arg-type]
        return sum(w for w, _, _ in self.attention_gemms) + norms

    @cached_property
    def attention_gemms(self) -> tuple[tuple[int, int, bool], ...]:
        """The attention block's GEMMs: (weights, K, whether tensor parallelism splits K). The
        output projection is row-parallel (K = its input width / tp); the others split N."""
        c = self.card
        h, n_h = c.hidden_size, c.num_attention_heads
        if c.is_mla:
            kv_lora, rope = int(c.kv_lora_rank), int(c.qk_rope_head_dim)  # type: ignore[arg-type]
            nope, v = int(c.qk_nope_head_dim), int(c.v_head_dim)  # type: ignore[arg-type]
            if c.q_lora_rank:
                q = ((h * c.q_lora_rank, h, False),
                     (c.q_lora_rank * n_h * (nope + rope), c.q_lora_rank, False))
            else:
                q = ((h * n_h * (nope + rope), h, False),)
            kv = ((h * (kv_lora + rope), h, False), (kv_lora * n_h * (nope + v), kv_lora, False))
            return (*q, *kv, (n_h * v * h, n_h * v, True))
        d = c.attention_head_dim
        return ((h * n_h * d + 2 * h * c.kv_heads * d, h, False), (n_h * d * h, n_h * d, True))

    # ---- feed-forward ----------------------------------------------------------------------
    @property
    def dense_ffn_params_per_layer(self) -> int:
        c = self.card
        return 3 * c.hidden_size * int(c.intermediate_size or 0) + c.hidden_size  # + post norm

    @property
    def params_per_expert(self) -> int:
        c = self.card
        return 3 * c.hidden_size * int(c.moe_intermediate_size or 0)

    @property
    def shared_expert_params_per_layer(self) -> int:
        return self.card.num_shared_experts * self.params_per_expert

    @property
    def router_params_per_layer(self) -> int:
        return self.card.hidden_size * self.card.num_experts

    @property
    def moe_ffn_params_per_layer(self) -> int:
        """All routed experts + shared experts + router + post norm of one MoE layer."""
        c = self.card
        return (
            c.num_experts * self.params_per_expert
            + self.shared_expert_params_per_layer
            + self.router_params_per_layer
            + c.hidden_size
        )

    # ---- layers ----------------------------------------------------------------------------
    def layer_kind(self, layer: int) -> LayerKind:
        c = self.card
        ffn = "moe" if c.is_moe and layer >= c.first_k_dense_layers else "dense"
        window = None
        if c.sliding_window and c.sliding_window_every and layer % c.sliding_window_every == 0:
            window = c.sliding_window
        return LayerKind(ffn=ffn, window_tokens=window)

    @property
    def layer_pattern(self) -> LayerPattern:
        c = self.card
        windows = bool(c.sliding_window and c.sliding_window_every)
        return LayerPattern(first_moe=c.first_k_dense_layers if c.is_moe else None,
                            window_every=c.sliding_window_every if windows else None)

    @cached_property
    def layer_kinds(self) -> tuple[LayerKind, ...]:
        """The kind of every transformer layer, in order."""
        return tuple(self.layer_kind(i) for i in range(self.card.num_hidden_layers))

    @cached_property
    def distinct_kinds(self) -> tuple[LayerKind, ...]:
        seen: dict[LayerKind, None] = {}
        for kind in self.layer_kinds:
            seen.setdefault(kind, None)
        return tuple(seen)

    def layer_params(self, kind: LayerKind) -> int:
        ffn = self.moe_ffn_params_per_layer if kind.ffn == "moe" else self.dense_ffn_params_per_layer
        return self.attention_params_per_layer + ffn

    @property
    def embedding_params(self) -> int:
        return self.card.vocab_size * self.card.hidden_size

    @property
    def lm_head_params(self) -> int:
        """LM head weights plus the final norm; a tied head shares the embedding's weights."""
        c = self.card
        return (0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size) + c.hidden_size

    @cached_property
    def total_params(self) -> int:
        layers = sum(self.layer_params(kind) for kind in self.layer_kinds)
        return layers + self.embedding_params + self.lm_head_params

    # ---- per-token work --------------------------------------------------------------------
    def active_ffn_params(self, kind: LayerKind) -> int:
        """FFN weights one token multiplies through (k routed experts + shared + router)."""
        if kind.ffn == "dense":
            return 3 * self.card.hidden_size * int(self.card.intermediate_size or 0)
        c = self.card
        return (
            (c.num_experts_per_tok + c.num_shared_experts) * self.params_per_expert
            + self.router_params_per_layer
        )

    @property
    def attention_projection_params(self) -> int:
        return self.attention_params_per_layer

    @cached_property
    def active_params(self) -> int:
        """Parameters touched per token, embeddings and head included (the '37B active' figure)."""
        per_layer = sum(
            self.attention_params_per_layer + self.active_ffn_params(k) for k in self.layer_kinds
        )
        return per_layer + self.embedding_params + self.lm_head_params

    def attention_core_flops(self, query_tokens: float, context_tokens: float) -> float:
        """QK^T and PV FLOPs of one layer for `query_tokens` queries over `context_tokens` keys each."""
        n_h = self.card.num_attention_heads
        return 2.0 * n_h * query_tokens * context_tokens * (self.qk_head_dim + self.v_head_dim)

    def decode_attention_core_flops(self, query_tokens: float, context_tokens: float) -> float:
        """Decode attention FLOPs of one layer. MLA decodes in the latent space (FlashMLA: the
        up-projections absorbed into the query and the output), so each query-key pair costs
        qk over kv_lora_rank + rope dims and PV over kv_lora_rank per head; other attention as in
        prefill."""
        c = self.card
        if not c.is_mla:
            return self.attention_core_flops(query_tokens, context_tokens)
        latent, rope = int(c.kv_lora_rank or 0), int(c.qk_rope_head_dim or 0)
        return 2.0 * c.num_attention_heads * query_tokens * context_tokens * (2 * latent + rope)

    # ---- KV cache --------------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """K and V (GQA) or the latent vector + rope key (MLA) of one token in one layer."""
        c = self.card
        if c.is_mla:
            return int(c.kv_lora_rank) + int(c.qk_rope_head_dim)  # type: ignore[arg-type]
        return 2 * c.kv_heads * c.attention_head_dim
