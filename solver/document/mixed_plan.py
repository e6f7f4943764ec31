"""plan.json of a mixed cluster (issue 16): the single-kind fields, `pools`, `replicas` and a
device map whose every GPU names its pool and kind.

The single-kind fields describe the largest replica group (most GPUs in all; the first in the
plan's order on ties): its shape (tp and expert grid of its first stage, pp, dp = its replica
count), its stages, batch size and serving block; `gpu` is that group's first stage's card.
`metrics` are the whole cluster's: throughput of every replica, per GPU of the whole cluster
(idle GPUs count), and the worst replica's TTFT, TPOT and e2e (every replica meets each SLO);
`metrics.objective` is the goodput the planner maximized, scored tokens/s per GPU of the cluster.
Every number comes from the float evaluation (physics/mixed.evaluate_replica).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from solver.document.plan import (
    GB,
    SCHEMA_VERSION,
    GpuCount,
    Parallelism,
    PlanMetrics,
    ServingBlock,
    SolverInfo,
    StagePlan,
)
from solver.inputs.condition import Condition
from solver.physics.continuous import ContinuousLoad
from solver.physics.mixed import (
    MixedCostModel,
    MixedStage,
    ReplicaMetrics,
    StageOption,
    Template,
    evaluate_replica,
)
from solver.physics.serving import ServingPoint

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class GpuPoolPlan(BaseModel):
    model_config = _FROZEN
    name: str
    gpu: str
    num_nodes: int
    gpus_per_node: int
    num_gpus: int
    gpus_used: int
    first_gpu: int  # device ids of this pool: first_gpu .. first_gpu + num_gpus - 1
    layers_held: int  # layer copies on this pool's GPUs, over every replica
    throughput_share: float  # of the plan's scored tokens/s, by the layers each stage runs


class MixedStagePlan(BaseModel):
    model_config = _FROZEN
    stage: int
    pool: str
    gpu: str
    tp: int
    ep: int
    etp: int
    first_layer: int
    last_layer: int
    num_layers: int
    mix_ms: float  # the average step of one micro-batch on this stage
    chunk_ms: float  # a step that carries a prompt chunk
    memory_gb: float  # per GPU
    usable_memory_gb: float  # of this stage's card


class ReplicaMetricsPlan(BaseModel):
    model_config = _FROZEN
    ttft_ms: float
    tpot_ms: float
    e2e_latency_ms: float
    ttft_mean_ms: float
    tpot_mean_ms: float
    throughput_tokens_per_s: float  # one replica
    requests_per_s: float  # one replica: its share of the requests, by capacity


class ReplicaGroup(BaseModel):
    model_config = _FROZEN
    template: str
    count: int
    gpus_per_replica: int
    max_num_seqs: int
    chunk_tokens: int
    utilization: float
    stages: list[MixedStagePlan]
    metrics: ReplicaMetricsPlan


class MixedDevice(BaseModel):
    model_config = _FROZEN
    gpu: int
    pool: str
    kind: str  # the card
    node: int  # cluster-wide node index (pools in order)
    local_rank: int
    group: int  # index into replicas
    replica: int  # cluster-wide replica index
    stage: int
    tp_rank: int
    first_layer: int
    last_layer: int
    memory_gb: float


class SinglePoolResult(BaseModel):
    model_config = _FROZEN
    pool: str
    tokens_per_s: float
    replicas: list[str]  # "count x template"


class Comparison(BaseModel):
    """The plan against the best plan on each pool alone and the proportional-split heuristic,
    in scored tokens/s of the whole plan."""

    model_config = _FROZEN
    mixed_tokens_per_s: float
    single_pool: list[SinglePoolResult]
    best_single_pool: str | None
    best_single_pool_tokens_per_s: float
    proportional_tokens_per_s: float
    proportional_replicas: list[str]


class MixedPlan(BaseModel):
    model_config = _FROZEN
    schema_version: int = SCHEMA_VERSION
    condition: str
    status: str
    model: str
    gpu: str
    parallelism: Parallelism
    batch_size: int
    microbatches: int
    gpus: GpuCount
    stages: list[StagePlan]
    devices: list[MixedDevice]
    metrics: PlanMetrics
    solver: SolverInfo
    serving: ServingBlock
    gpu_pools: list[GpuPoolPlan]
    replicas: list[ReplicaGroup]
    baselines: Comparison | None = None  # the best single pool and the proportional heuristic


class GroupChoice(BaseModel):
    """What the optimizer chose for one replica group."""

    model_config = ConfigDict(frozen=True)
    template: Template
    count: int
    load: ContinuousLoad
    boundaries: tuple[int, ...]


def stage_plan(cond: Condition, option: StageOption, s: MixedStage) -> MixedStagePlan:
    pool = cond.mixed.pools[option.pool]
    return MixedStagePlan(
        stage=s.stage, pool=pool.name, gpu=pool.gpu_name, tp=option.tp, ep=option.ep, etp=option.etp,
        first_layer=s.first_layer, last_layer=s.last_layer, num_layers=s.num_layers,
        mix_ms=s.step_s["mix"] * 1e3, chunk_ms=s.step_s["chunk"] * 1e3,
        memory_gb=s.memory_bytes / GB, usable_memory_gb=s.usable_bytes / GB)


def evaluate_group(cond: Condition, choice: GroupChoice,
                   ) -> tuple[ServingPoint, list[MixedStage], ReplicaMetrics]:
    return evaluate_replica(MixedCostModel(cond.mixed), choice.template, choice.load,
                            list(choice.boundaries))


def replica_group(cond: Condition, choice: GroupChoice) -> ReplicaGroup:
    point, stages, m = evaluate_group(cond, choice)
    names = [p.name for p in cond.mixed.pools]
    return ReplicaGroup(
        template=choice.template.label(names), count=choice.count,
        gpus_per_replica=sum(o.gpus for o in choice.template.stages),
        max_num_seqs=int(choice.load.slots), chunk_tokens=int(choice.load.chunk_tokens),
        utilization=float(choice.load.utilization),
        stages=[stage_plan(cond, o, s) for o, s in zip(choice.template.stages, stages, strict=True)],
        metrics=ReplicaMetricsPlan(
            ttft_ms=m.ttft_s * 1e3, tpot_ms=m.tpot_s * 1e3, e2e_latency_ms=m.e2e_latency_s * 1e3,
            ttft_mean_ms=m.ttft_mean_s * 1e3, tpot_mean_ms=m.tpot_mean_s * 1e3,
            throughput_tokens_per_s=m.throughput_tokens_per_s, requests_per_s=m.requests_per_s))
