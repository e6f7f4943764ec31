"""The Plan document (plan.json) and its construction from a chosen candidate and split.

Every number in a Plan comes from the float evaluator (solver/physics/evaluate.py), never from the integer
objective; the solver block only records what the optimizer reported.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from solver.document.serving import ServingBlock, serving_block
from solver.inputs.condition import Condition
from solver.physics.continuous import CONTINUOUS, DECODE_ONLY, ContinuousLoad, DecodeLoad
from solver.physics.cost import ExpertLayout
from solver.physics.evaluate import StageEval, evaluate_plan
from solver.physics.placement import ExpertPlacement
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


class PoolsBlock(BaseModel):
    """Disaggregated serving: the two pools, the KV transfer between them, the request's metrics."""

    model_config = _FROZEN
    prefill: PoolPlan
    decode: PoolPlan
    link_gb_per_s: float
    kv_transfer_ms: float  # one prompt's KV, the larger per-GPU shard of either side, + latency
    ttft_prefill_ms: float  # own chunked prefill + slot wait, at the SLO percentile
    ttft_admission_ms: float  # waiting for a decode slot, at the SLO percentile
    requests_per_s: float  # the operating rate R (both pools carry it)
    requests_per_s_per_gpu: float  # goodput per GPU: R / GPUs of both pools


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


def experts_of(ep_rank: int, ep: int, num_experts: int) -> list[int]:
    """Uniform contiguous spread: EP rank r hosts experts [r*E/ep, (r+1)*E/ep)."""
    if num_experts == 0:
        return []
    per = num_experts // ep
    return list(range(ep_rank * per, (ep_rank + 1) * per))


def _experts_of_rank(condition: Condition, shape: ParallelShape, ep_rank: int,
                     placement: ExpertPlacement | None) -> dict[str, object]:
    if not condition.model.is_moe:
        return {"experts": []}
    if placement is None:
        return {"experts": experts_of(ep_rank, shape.ep, condition.model.num_experts),
                "expert_token_share": 1.0 / shape.ep}
    layers = placement.layers
    share = sum(p.gpu_load[ep_rank] for p in layers) / len(layers)
    fields: dict[str, object] = {"experts": layers[0].experts_by_gpu[ep_rank],
                                 "expert_token_share": share}
    if placement.per_layer:
        fields["experts_by_layer"] = [p.experts_by_gpu[ep_rank] for p in layers]
    return fields


def _device(condition: Condition, shape: ParallelShape, gpu: int, stage: StageEval,
            placement: ExpertPlacement | None = None) -> Device:
    g = shape.gpus_per_stage
    local = gpu % g
    return Device(
        gpu=gpu,
        node=gpu // condition.cluster.gpus_per_node,
        local_rank=gpu % condition.cluster.gpus_per_node,
        replica=gpu // shape.gpus_per_replica,
        stage=stage.stage,
        tp_rank=local % shape.tp,
        sp_rank=(local // shape.tp) % shape.sp,
        attn_dp_rank=local // (shape.tp * shape.sp),
        ep_rank=(local // shape.etp) % shape.ep,
        etp_rank=local % shape.etp,
        first_layer=stage.first_layer,
        last_layer=stage.last_layer,
        **_experts_of_rank(condition, shape, (local // shape.etp) % shape.ep, placement),  # type: ignore[arg-type]
        memory_gb=stage.memory_bytes / GB,
        memory_breakdown_gb=MemoryBreakdown(
            weights=stage.weights_bytes / GB,
            kv_cache=stage.kv_cache_bytes / GB,
            activations=stage.activation_bytes / GB,
            overhead=stage.overhead_bytes / GB,
        ),
        prefill_compute_ms=(stage.prefill_s - stage.prefill_comm_s) * 1e3,
        decode_compute_ms=(stage.decode_s - stage.decode_comm_s) * 1e3,
        prefill_comm_bytes=stage.prefill_comm_bytes,
        decode_comm_bytes=stage.decode_comm_bytes,
    )


def build_plan(condition: Condition, shape: ParallelShape, load: Load | int, boundaries: list[int],
               status: str, solver: SolverInfo, placement: ExpertPlacement | None = None) -> Plan:
    layout = ExpertLayout(placement.slots_per_gpu, placement.imbalance) if placement else None
    costs, stages, metrics = evaluate_plan(condition, shape, load, boundaries, layout)
    batch_size = int(costs.batch_size)
    devices = [
        _device(condition, shape, gpu, stages[(gpu % shape.gpus_per_replica) // shape.gpus_per_stage],
                placement)
        for gpu in range(shape.gpus_used)
    ]
    return Plan(
        condition=condition.name,
        status=status,
        model=condition.model.name,
        gpu=condition.cluster.gpu.name,
        parallelism=Parallelism(**shape.as_dict()),
        batch_size=batch_size,
        microbatches=costs.microbatches,
        gpus=GpuCount(
            available=condition.cluster.num_gpus,
            used=shape.gpus_used,
            idle=condition.cluster.num_gpus - shape.gpus_used,
            per_stage=shape.gpus_per_stage,
            per_replica=shape.gpus_per_replica,
            model_parts=shape.dp * shape.pp * shape.gpus_per_stage,
        ),
        stages=[
            StagePlan(
                stage=s.stage,
                first_layer=s.first_layer,
                last_layer=s.last_layer,
                num_layers=s.last_layer - s.first_layer + 1,
                holds_embedding=s.stage == 0,
                holds_lm_head=s.stage == shape.pp - 1,
                prefill_ms=s.prefill_s * 1e3,
                decode_ms=s.decode_s * 1e3,
                memory_gb=s.memory_bytes / GB,
            )
            for s in stages
        ],
        devices=devices,
        metrics=PlanMetrics(
            ttft_ms=metrics.ttft_s * 1e3,
            tpot_ms=metrics.tpot_s * 1e3,
            e2e_latency_ms=metrics.e2e_latency_s * 1e3,
            throughput_tokens_per_s=metrics.throughput_tokens_per_s,
            throughput_tokens_per_s_per_gpu=metrics.throughput_tokens_per_s_per_gpu,
            objective=metrics.objective,
        ),
        solver=solver,
        expert_placement=_placement_summary(condition, placement),
        serving=serving_block(condition, costs, metrics),
    )


def _placement_summary(condition: Condition,
                       placement: ExpertPlacement | None) -> ExpertPlacementSummary | None:
    if placement is None:
        return None
    methods = {p.method for p in placement.layers}
    return ExpertPlacementSummary(
        method=max(methods, key=PLACEMENT_METHODS.index),  # the most searching method used
        proven_optimal=placement.optimal,
        redundant_experts=condition.policy.redundant_experts,
        slots_per_gpu=placement.slots_per_gpu,
        max_over_mean_token_load=placement.imbalance,
        greedy_max_over_mean_token_load=placement.greedy_imbalance,
        per_layer=placement.per_layer,
    )
