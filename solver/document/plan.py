"""The Plan document (plan.json); document/building.py builds one from a chosen candidate and split.

Every number in a Plan comes from the float evaluator (solver/physics/evaluate.py), never from the integer
objective; the solver block only records what the optimizer reported.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from solver.document.serving import ServingBlock
from solver.physics.continuous import CONTINUOUS, DECODE_ONLY, ContinuousLoad, DecodeLoad
from solver.physics.points import Load
from solver.physics.serving import StaticLoad
from solver.physics.shapes import ParallelShape

SCHEMA_VERSION = 1
GB = 1e9

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Parallelism(BaseModel):
    model_config = _FROZEN
    tp: int
    pp: int
    dp: int
    ep: int
    etp: int
    attn_dp: int
    sp: int

    def shape(self) -> ParallelShape:
        return ParallelShape(**self.model_dump())


class GpuCount(BaseModel):
    model_config = _FROZEN
    available: int
    used: int
    idle: int
    per_stage: int
    per_replica: int
    model_parts: int  # pieces the model was divided into: dp * pp * per_stage; one per GPU


class StagePlan(BaseModel):
    model_config = _FROZEN
    stage: int
    first_layer: int
    last_layer: int
    num_layers: int
    holds_embedding: bool
    holds_lm_head: bool
    prefill_ms: float  # one micro-batch through this stage
    decode_ms: float  # one decode step of one micro-batch
    memory_gb: float  # per GPU of this stage


class MemoryBreakdown(BaseModel):
    model_config = _FROZEN
    weights: float
    kv_cache: float
    activations: float
    overhead: float


class Device(BaseModel):
    model_config = _FROZEN
    gpu: int
    node: int
    local_rank: int
    replica: int
    stage: int
    tp_rank: int
    sp_rank: int
    attn_dp_rank: int
    ep_rank: int
    etp_rank: int
    first_layer: int
    last_layer: int
    experts: list[int]
    expert_token_share: float | None = None  # share of its EP group's routed tokens (layer mean)
    experts_by_layer: list[list[int]] | None = None  # per MoE layer, when loads are per layer
    memory_gb: float
    memory_breakdown_gb: MemoryBreakdown
    prefill_compute_ms: float
    decode_compute_ms: float
    prefill_comm_bytes: float
    decode_comm_bytes: float


class PlanMetrics(BaseModel):
    model_config = _FROZEN
    ttft_ms: float
    tpot_ms: float
    e2e_latency_ms: float
    throughput_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    objective: float


class SolverInfo(BaseModel):
    """What the optimizer reported. Only deterministic figures: the same condition gives the same
    plan.json on a quiet and on a busy machine (wall time is printed on the console instead)."""

    model_config = _FROZEN
    method: str  # cp-sat | exhaustive | check
    objective: float | None  # unitless objective as the optimizer saw it (integer / scale)
    best_bound: float | None
    gap: float | None
    candidates: int
    candidates_in_model: int
    candidates_removed: dict[str, int]
    # searches stopped by a limit before finishing: "work limit: <stage>" (deterministic) or
    # "time limit: <stage>" (the --time-limit safety net: the plan may then depend on machine load)
    limits_hit: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _drop_wall_time(cls, data: Any) -> Any:
        """plan.json files written before wall time left the document carry `seconds`."""
        if isinstance(data, dict) and "seconds" in data:
            data = {k: v for k, v in data.items() if k != "seconds"}
        return data


PLACEMENT_METHODS = ("uniform", "greedy", "swaps", "cp-sat")


class ExpertPlacementSummary(BaseModel):
    model_config = _FROZEN
    method: str  # uniform | greedy | swaps | cp-sat (placement.Placement.method)
    proven_optimal: bool
    redundant_experts: int
    slots_per_gpu: int
    max_over_mean_token_load: float  # planned placement (mean over MoE layers)
    greedy_max_over_mean_token_load: float  # EPLB-style greedy on the same slots
    per_layer: bool


class Plan(BaseModel):
    model_config = _FROZEN
    schema_version: int = SCHEMA_VERSION
    condition: str
    status: str  # optimal | feasible | checked
    model: str
    gpu: str
    parallelism: Parallelism
    batch_size: int
    microbatches: int
    gpus: GpuCount
    stages: list[StagePlan]
    devices: list[Device]
    metrics: PlanMetrics
    solver: SolverInfo
    expert_placement: ExpertPlacementSummary | None = None
    serving: ServingBlock | None = None  # absent in plan.json files written before it
    pools: PoolsBlock | None = None  # disaggregated serving: each pool's own plan (absent otherwise)
    comparison: Comparison | None = None  # serving.mode auto: both architectures' goodput

    def load(self) -> Load:
        """The load the plan was evaluated at (a static batch when the plan has no serving block)."""
        s = self.serving
        if s is not None and s.mode == DECODE_ONLY and s.utilization is not None:
            return DecodeLoad(self.batch_size, s.utilization)
        if s is None or s.mode != CONTINUOUS or s.chunk_tokens is None or s.utilization is None:
            return StaticLoad(self.batch_size)
        return ContinuousLoad(self.batch_size, s.utilization, s.chunk_tokens)


class PoolPlan(BaseModel):
    """One pool of a disaggregated plan: `instances` replicas of `plan` (its own parallelism,
    serving block, layer map and device map, GPUs numbered inside the pool), on the cluster's GPUs
    first_gpu .. first_gpu + gpus - 1."""

    model_config = _FROZEN
    instances: int
    gpus: int
    first_gpu: int
    plan: Plan
    capacity_requests_per_s: float  # what the pool's instances complete at their operating point
    requests_per_s: float  # the operating rate it carries
    tokens_per_s_per_gpu: float  # prefill: input tokens; decode: output tokens (at the rate)


class PoolDevice(BaseModel):
    """One GPU of the cluster in a disaggregated plan: its pool, the instance it serves and its
    place there. `instance_rank` is its GPU index inside the instance (the pool plan's device
    `gpu` modulo the instance's GPUs); role `head` marks the instance's first node (node rank 0,
    where its server listens), `worker` the other nodes of a multi-node instance."""

    model_config = _FROZEN
    gpu: int  # global id: the cluster's GPUs 0 .. G-1, the prefill pool first
    node: int
    local_rank: int
    pool: str  # prefill | decode
    instance: int
    instance_rank: int
    role: str  # head | worker


class PoolsBlock(BaseModel):
    """Disaggregated serving: the two pools, the KV transfer between them, the request's metrics."""

    model_config = _FROZEN
    prefill: PoolPlan
    decode: PoolPlan
    link_gb_per_s: float
    link_latency_ms: float
    kv_sent_bytes_per_gpu: float  # one prompt's KV on a prefill GPU that holds it
    kv_received_bytes_per_gpu: float  # the same prompt's KV on a decode GPU that keeps it
    kv_transfer_ms: float  # max(sent, received) / link + latency
    ttft_prefill_ms: float  # own chunked prefill + slot wait, at the SLO percentile
    ttft_admission_ms: float  # waiting for a decode slot, at the SLO percentile
    requests_per_s: float  # the operating rate R (both pools carry it)
    requests_per_s_per_gpu: float  # goodput per GPU: R / GPUs of both pools
    device_map: list[PoolDevice]  # every GPU of both pools, by global id


class ArchitectureResult(BaseModel):
    model_config = _FROZEN
    architecture: str  # aggregated | disaggregated
    status: str  # optimal | feasible | infeasible
    requests_per_s_per_gpu: float | None
    output_tokens_per_s_per_gpu: float | None
    summary: str  # the shape(s) in words


class Comparison(BaseModel):
    """serving.mode auto: both architectures, the better by goodput per GPU first."""

    model_config = _FROZEN
    winner: str
    results: list[ArchitectureResult]


Plan.model_rebuild()
