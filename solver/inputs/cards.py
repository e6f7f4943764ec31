"""Model cards (LLM architectures, Hugging Face config names) and accelerator cards.

Cards live as YAML in ``models/`` and ``conditions/hardware/`` at the repository root (shipped inside
the package as ``solver/data/models`` and ``solver/data/hardware``); users add their own folders of
cards (solver/inputs/card_library.py says where cards are searched). A condition may also give either card
inline. Field names of a model card are the Hugging Face ``config.json`` names so a config maps
directly.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "fp4", "int4"]

BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
}


class ModelCard(BaseModel):
    """An LLM architecture. Counts are per model; widths are element counts, not bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    num_hidden_layers: int = Field(gt=0, le=100_000)
    hidden_size: int = Field(gt=0, le=1_000_000)
    num_attention_heads: int = Field(gt=0, le=100_000)
    num_key_value_heads: int | None = Field(default=None, gt=0, le=100_000)
    head_dim: int | None = Field(default=None, gt=0, le=100_000)
    intermediate_size: int | None = Field(default=None, gt=0, le=10_000_000)
    vocab_size: int = Field(gt=0, le=100_000_000)
    tie_word_embeddings: bool = False
    # Mixture of experts (num_experts 0 = dense model).
    num_experts: int = Field(default=0, ge=0, le=100_000)
    num_experts_per_tok: int = Field(default=0, ge=0, le=100_000)
    moe_intermediate_size: int | None = Field(default=None, gt=0, le=10_000_000)
    num_shared_experts: int = Field(default=0, ge=0, le=1_000)
    first_k_dense_layers: int = Field(default=0, ge=0, le=100_000)
    # Multi-head latent attention (DeepSeek-V2/V3); all five present or none.
    q_lora_rank: int | None = Field(default=None, gt=0, le=1_000_000)
    kv_lora_rank: int | None = Field(default=None, gt=0, le=1_000_000)
    qk_nope_head_dim: int | None = Field(default=None, gt=0, le=100_000)
    qk_rope_head_dim: int | None = Field(default=None, gt=0, le=100_000)
    v_head_dim: int | None = Field(default=None, gt=0, le=100_000)
    # Sliding-window attention on some layers (gpt-oss: every other layer, 128 tokens).
    sliding_window: int | None = Field(default=None, gt=0)
    sliding_window_every: int | None = Field(
        default=None, gt=0, description="layer i uses the window when i % sliding_window_every == 0"
    )
    max_position_embeddings: int | None = Field(default=None, gt=0)
    published_params_b: float | None = Field(
        default=None, gt=0, description="published total parameter count, billions (for tests)"
    )
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if self.num_experts > 0:
            if self.num_experts_per_tok <= 0 or self.num_experts_per_tok > self.num_experts:
                raise ValueError("num_experts_per_tok must be between 1 and num_experts")
            if self.moe_intermediate_size is None:
                raise ValueError("an MoE model needs moe_intermediate_size")
        if self.first_k_dense_layers >= self.num_hidden_layers and self.num_experts > 0:
            raise ValueError("first_k_dense_layers must be smaller than num_hidden_layers")
        needs_dense_ffn = self.num_experts == 0 or self.first_k_dense_layers > 0
        if needs_dense_ffn and self.intermediate_size is None:
            raise ValueError("intermediate_size is required for dense FFN layers")
        mla = [self.q_lora_rank, self.kv_lora_rank, self.qk_nope_head_dim, self.qk_rope_head_dim,
               self.v_head_dim]
        if any(v is not None for v in mla[1:]) and not all(v is not None for v in mla[1:]):
            raise ValueError(
                "MLA needs kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim and v_head_dim together"
            )
        if not self.is_mla and self.num_attention_heads % self.kv_heads != 0:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim is None and self.hidden_size < self.num_attention_heads:
            raise ValueError("hidden_size is smaller than num_attention_heads: give head_dim")
        return self

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def num_moe_layers(self) -> int:
        return self.num_hidden_layers - self.first_k_dense_layers if self.is_moe else 0


class Efficiency(BaseModel):
    """Achievable fractions of the spec-sheet peaks for one compute precision (calibrated)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    mfu: float = Field(ge=1e-3, le=1)
    memory_bandwidth_utilization: float = Field(ge=1e-3, le=1)


class GpuCard(BaseModel):
    """An accelerator: spec-sheet numbers only (dense, no sparsity), plus calibrated efficiencies."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    # floors keep the cost model finite: a 1e-300 bandwidth would turn times into inf/NaN
    name: str
    memory_gb: float = Field(ge=1e-3, le=100_000)
    memory_gib: float | None = Field(
        default=None, ge=1e-3, le=100_000,
        description="memory as the device reports it (nvidia-smi / rocm-smi), GiB: what an engine "
        "sizes its KV cache from; default: memory_gb read as GiB (HBM is sized in GiB)")
    dense_tflops: dict[Precision, Annotated[float, Field(ge=1e-3, le=1e6, allow_inf_nan=False)]] = (
        Field(min_length=1))
    hbm_tb_per_s: float = Field(ge=1e-3, le=10_000)
    intra_node_gb_per_s: float = Field(default=450.0, ge=1e-3, le=1_000_000)
    intra_node_link: Literal["nvlink", "pcie"] = Field(
        default="nvlink", description="nvlink: NVLink/NVSwitch (one-shot and two-shot all-reduce); "
        "pcie: GPU-to-GPU traffic over PCIe (ring all-reduce)")
    inter_node_gb_per_s: float = Field(default=50.0, ge=1e-3, le=1_000_000)
    gpus_per_node: int = Field(default=8, gt=0, le=1_024)
    mfu: float = Field(default=0.6, ge=1e-3, le=1)
    memory_bandwidth_utilization: float = Field(default=0.8, ge=1e-3, le=1)
    efficiency: dict[Precision, Efficiency] = Field(
        default_factory=dict, description="calibrated efficiencies per compute precision"
    )
    layer_overhead_us: float = Field(
        default=0.0, ge=0, le=1e6, description="fixed time per transformer layer per forward pass"
    )
    collective_latency_us: float = Field(
        default=5.0, ge=0, le=1e6, description="alpha of the alpha-beta model, per collective hop "
        "(calibrated where measurements cover tensor parallelism)")
    link_bandwidth_utilization: float = Field(
        default=1.0, ge=1e-3, le=1, description="fraction of intra_node_gb_per_s that collectives "
        "achieve (calibrated where measurements cover tensor parallelism)")
    calibration: str = Field(default="", description="where the efficiencies were fitted")
    architecture: str = Field(
        default="", description="architecture generation (ampere, ada, hopper, blackwell, cdna3): "
        "calibration transfers efficiencies to cards without measurements by it")
    calibrated_as: str | None = Field(
        default=None, description="a calibrated card of the identical device (same die, memory "
        "and clocks): calibration gives this card that card's fit")
    source: str = ""

    @model_validator(mode="after")
    def _positive_tflops(self) -> GpuCard:
        for precision, tflops in self.dense_tflops.items():
            if not (1e-3 <= tflops <= 1e6 and math.isfinite(tflops)):
                raise ValueError(f"dense_tflops.{precision} must be between 0.001 and 1000000 TFLOPS")
        return self

    @property
    def memory_bytes(self) -> float:
        """The device's memory as engines see it (its reported capacity)."""
        return (self.memory_gib if self.memory_gib is not None else self.memory_gb) * 2**30

    def peak_flops(self, precision: str) -> float | None:
        """Dense peak FLOP/s for a compute precision; fp16 falls back to bf16 and back."""
        table = dict(self.dense_tflops)
        for alias_a, alias_b in (("fp16", "bf16"), ("bf16", "fp16"), ("int8", "fp8"), ("fp8", "int8"),
                                 ("int4", "fp4"), ("fp4", "int4")):
            table.setdefault(alias_a, table.get(alias_b))  # type: ignore[arg-type]
        value = table.get(precision)
        return None if value is None else value * 1e12
