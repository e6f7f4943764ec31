"""How the engine serves: the serving mode, its chunk budget and load, and the SLOs.

Continuous batching with chunked prefill (vLLM, SGLang, TensorRT-LLM) is the default; a static
batch (every prompt prefilled together, then decoded together) is kept for files that describe
fixed batches. physics/continuous.py and physics/serving.py price both.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)

ServingMode = Literal["continuous", "static", "disaggregated", "auto"]
DISAGGREGATED, AUTO = "disaggregated", "auto"
# The planner's cap on max-num-seqs when the workload names none (continuous serving): vLLM V1's
# default for large-memory GPUs; KV memory and the SLOs bind well below it in practice.
DEFAULT_MAX_NUM_SEQS = 1024


class SloSpec(BaseModel):
    model_config = _STRICT
    ttft_ms: float | None = Field(default=None, gt=0, le=1e9)
    tpot_ms: float | None = Field(default=None, gt=0, le=1e9)
    e2e_latency_ms: float | None = Field(default=None, gt=0, le=1e10)
    percentile: Literal["mean", "p50", "p90", "p99"] = Field(
        default="mean", description="TTFT and inter-token latency SLOs hold at this percentile "
        "(continuous serving: queueing and chunk steps); e2e is a mean")


class PoolsSpec(BaseModel):
    """Disaggregated serving (serving.mode: disaggregated | auto): the link the KV cache crosses
    between the prefill and the decode pool, and how the pools share the cluster."""

    model_config = _STRICT
    link_gb_per_s: float | None = Field(
        default=None, ge=1e-3, le=1e6, description="KV transfer bandwidth per GPU between the "
        "pools, GB/s (default: the cluster's inter-node bandwidth)")
    link_latency_us: float | None = Field(
        default=None, ge=0, le=1e7, description="latency of one KV transfer, microseconds "
        "(default: the cluster's collective latency)")
    whole_nodes: bool = Field(
        default=True, description="each pool takes whole nodes (no node holds both pools); "
        "false: pools may share a node")
    max_instances: int = Field(
        default=4096, ge=1, le=16_384, description="most instances of one pool the planner considers")


class ServingSpec(BaseModel):
    """How the engine batches: continuous batching with chunked prefill (vLLM, SGLang, TensorRT-LLM)
    or a static batch (every prompt prefilled together, then decoded together)."""

    model_config = _STRICT
    mode: ServingMode = Field(
        default="continuous", description="continuous: engines' continuous batching with chunked "
        "prefill (workload.batch_size / max_batch_size: max-num-seqs); static: fixed batches; "
        "disaggregated: separate prefill and decode pools; auto: the better of continuous and "
        "disaggregated by goodput per GPU")
    chunk_tokens: int | list[Annotated[int, Field(gt=0, le=1_000_000)]] | None = Field(
        default=None, description="max-num-batched-tokens per step: one value, or the values the "
        "planner chooses from (default 2048, 4096, 8192, 16384)")
    utilization: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        default=None, description="mean active sequences / max-num-seqs the planner chooses from "
        "(default: a grid from 0.1 to 0.99)")
    pools: PoolsSpec | None = Field(
        default=None, description="disaggregated serving only: the link between the prefill and "
        "decode pools and how they share the cluster")

    @model_validator(mode="after")
    def _positive_chunk(self) -> ServingSpec:
        values = self.chunk_tokens if isinstance(self.chunk_tokens, list) else [self.chunk_tokens]
        if any(v is not None and not 0 < v <= 1_000_000 for v in values):
            raise ValueError("chunk_tokens must be between 1 and 1000000")
        if isinstance(self.chunk_tokens, list) and not self.chunk_tokens:
            raise ValueError("chunk_tokens: the list is empty")
        if self.utilization is not None and not self.utilization:
            raise ValueError("utilization: the list is empty")
        if self.pools is not None and self.mode not in (DISAGGREGATED, AUTO):
            raise ValueError(f"pools: only for mode disaggregated or auto (mode is {self.mode})")
        return self

    @property
    def pool_spec(self) -> PoolsSpec:
        return self.pools or PoolsSpec()


def batch_rule_problem(mode: str, batch_size: int | None, max_batch_size: int | None) -> str | None:
    """What is wrong with the workload's batch keys for the serving mode, or None: a static
    batch needs batch_size (fixed) or max_batch_size (chosen); continuous serving defaults to
    choosing max-num-seqs up to DEFAULT_MAX_NUM_SEQS."""
    if mode == "static" and batch_size is None and max_batch_size is None:
        return ("static serving needs batch_size (fixed) or max_batch_size (chosen); "
                "continuous serving (serving.mode: continuous) chooses max-num-seqs itself")
    return None
