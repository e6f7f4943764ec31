"""Mixed GPU clusters: a replica is a pipeline whose stages may sit on different pools (issue 16).

A stage is a `StageOption`: one pool's GPUs with that kind's tensor parallelism (tp, and for MoE
models the expert grid ep x etp = tp). A `Template` is the ordered list of a replica's stages: each
pool it uses holds one contiguous run of stages with one option, pp <= 4 in all. Every stage is
priced by its own pool's cost model (physics/cost.py on that pool's single-kind condition: card,
mfu, HBM, memory, links) with the template's depth, so a template whose stages all sit on one
pool costs exactly what the single-kind model costs the shape TP x PP. The activation transfer
from a stage to the next is the pool's point-to-point link (across nodes when the pool's run spans
more than a node), or, where the next stage sits on another pool, the inter-pool link:
bytes / inter_pool_bytes_per_s + the sending card's alpha.

`evaluate_replica` is the float evaluation of one replica (the plan document, the verifier and
`check` use it); optimize/mixed_tables.py turns the same costs into integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.inputs.pools import MixedCluster
from solver.physics.architecture import Architecture, LayerKind
from solver.physics.collectives import PhaseCost
from solver.physics.cost import CandidateCosts, CostModel
from solver.physics.evaluate import kind_counts
from solver.physics.points import Load
from solver.physics.serving import PipelineAggregates, ServingPoint
from solver.physics.shapes import ParallelShape


@dataclass(frozen=True, order=True)
class StageOption:
    """One pipeline stage's GPUs: `tp` GPUs of pool `pool` (MoE: experts over ep x etp = tp)."""

    pool: int
    tp: int
    ep: int = 1
    etp: int = 1

    def shape(self, pp: int) -> ParallelShape:
        return ParallelShape(tp=self.tp, pp=pp, ep=self.ep, etp=self.etp)

    @property
    def gpus(self) -> int:
        return self.tp

    def label(self, names: tuple[str, ...] | list[str]) -> str:
        expert = f" EP{self.ep} ETP{self.etp}" if self.ep > 1 or self.etp > 1 else ""
        return f"{names[self.pool]} TP{self.tp}{expert}"


@dataclass(frozen=True, order=True)
class Template:
    """A replica's pipeline: its stages in order (each pool one contiguous run, one option)."""

    stages: tuple[StageOption, ...]

    @property
    def pp(self) -> int:
        return len(self.stages)

    def usage(self, num_pools: int) -> tuple[int, ...]:
        """GPUs of each pool one replica of this template takes."""
        used = [0] * num_pools
        for stage in self.stages:
            used[stage.pool] += stage.gpus
        return tuple(used)

    @property
    def pools(self) -> tuple[int, ...]:
        """The pools of the runs, in pipeline order."""
        order: list[int] = []
        for stage in self.stages:
            if not order or order[-1] != stage.pool:
                order.append(stage.pool)
        return tuple(order)

    def crosses_pools(self, stage: int) -> bool:
        """The transfer after `stage` goes to another pool."""
        return stage + 1 < self.pp and self.stages[stage + 1].pool != self.stages[stage].pool

    def run_gpus(self, stage: int) -> int:
        """GPUs of the run (consecutive stages on one pool) that holds `stage`."""
        pool = self.stages[stage].pool
        return sum(s.gpus for s in self.stages if s.pool == pool)

    def label(self, names: tuple[str, ...] | list[str]) -> str:
        runs: list[str] = []
        for pool in self.pools:
            options = [s for s in self.stages if s.pool == pool]
            count = f" x{len(options)}" if len(options) > 1 else ""
            runs.append(options[0].label(names) + count)
        return " -> ".join(runs)


class MixedCostModel:
    """One cost model per pool, and the link between pools."""

    def __init__(self, cluster: MixedCluster) -> None:
        self.cluster = cluster
        self.models = [CostModel(p.condition) for p in cluster.pools]
        self.arch: Architecture = self.models[0].arch

    def stage_costs(self, template: Template, load: Load) -> list[CandidateCosts]:
        """Each stage's costs on its own pool at the template's depth (`load` may hold arrays)."""
        return [self.models[o.pool].candidate(o.shape(template.pp), load) for o in template.stages]

    def transfer(self, template: Template, stage: int, costs: CandidateCosts, step: str) -> PhaseCost:
        """The activation transfer after `stage` (nothing after the last stage)."""
        if stage == template.pp - 1:
            return PhaseCost()
        size = costs.transfer.steps[step].comm_bytes
        model = self.models[template.stages[stage].pool]
        if template.crosses_pools(stage):
            seconds = size / self.cluster.inter_pool_bytes_per_s + model.hw.alpha_s
            return PhaseCost(comm_s=seconds, comm_bytes=size)
        crosses = template.run_gpus(stage) > model.hw.gpus_per_node
        return model.net.point_to_point(size, crosses)

    def extra_time(self, template: Template, stage: int, costs: CandidateCosts, step: str) -> PhaseCost:
        """Embedding on the first stage, LM head on the last, the transfer after every other."""
        extra = costs.first_stage.steps[step] if stage == 0 else PhaseCost()
        if stage == template.pp - 1:
            return extra + costs.last_stage.steps[step]
        return extra + self.transfer(template, stage, costs, step)

    @staticmethod
    def extra_memory_bytes(template: Template, stage: int, costs: CandidateCosts) -> float:
        """Per GPU beside the layers: embedding, LM head and logits (and a drafting MTP module's
        weights and KV cache), workspace and overhead."""
        extra = costs.activation_bytes + costs.overhead_bytes
        if stage == 0:
            extra += costs.first_stage.weight_bytes
        if stage == template.pp - 1:
            extra += (costs.last_stage.weight_bytes + costs.last_stage.kv_cache_bytes
                      + costs.last_stage_activation_bytes)
        return extra


@dataclass(frozen=True)
class MixedStage:
    """One stage of a mixed replica, per GPU, in floats (its own pool's card)."""

    stage: int
    pool: int
    first_layer: int
    last_layer: int  # inclusive
    step_s: dict[str, float]
    step_comm_s: dict[str, float]
    weights_bytes: float
    kv_cache_bytes: float
    other_bytes: float  # workspace, logits, runtime overhead
    usable_bytes: float  # the pool card's usable memory

    @property
    def memory_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.other_bytes

    @property
    def num_layers(self) -> int:
        return self.last_layer - self.first_layer + 1


@dataclass(frozen=True)
class ReplicaMetrics:
    """One replica's metrics (seconds; scored tokens per second)."""

    ttft_s: float
    tpot_s: float
    e2e_latency_s: float
    ttft_mean_s: float
    tpot_mean_s: float
    throughput_tokens_per_s: float
    requests_per_s: float


def _stage(mixed: MixedCostModel, template: Template, costs: CandidateCosts, stage: int,
           counts: dict[LayerKind, int], first: int, end: int) -> MixedStage:
    steps = costs.point.steps
    times: dict[str, float] = {}
    comms: dict[str, float] = {}
    for step in steps:
        extra = mixed.extra_time(template, stage, costs, step)
        times[step] = sum(costs.layer[k].steps[step].time_s * n for k, n in counts.items()) + extra.time_s
        comms[step] = sum(costs.layer[k].steps[step].comm_s * n for k, n in counts.items()) + extra.comm_s
    pool = mixed.cluster.pools[template.stages[stage].pool]
    last = stage == template.pp - 1
    extra_weights = (costs.first_stage.weight_bytes if stage == 0 else 0.0) + (
        costs.last_stage.weight_bytes if last else 0.0)
    extra_kv = costs.last_stage.kv_cache_bytes if last else 0.0  # a drafting MTP module's
    weights = sum(costs.layer[k].weight_bytes * n for k, n in counts.items()) + extra_weights
    kv = sum(costs.layer[k].kv_cache_bytes * n for k, n in counts.items()) + extra_kv
    other = MixedCostModel.extra_memory_bytes(template, stage, costs) - extra_weights - extra_kv
    return MixedStage(stage, pool.index, first, end - 1, times, comms, weights, kv, other,
                      pool.condition.cluster.usable_memory_bytes)


def evaluate_replica(mixed: MixedCostModel, template: Template, load: Load, boundaries: list[int],
                     ) -> tuple[ServingPoint, list[MixedStage], ReplicaMetrics]:
    """Float evaluation of one replica of `template` at `load` with stage s holding layers
    [boundaries[s], boundaries[s + 1])."""
    all_costs = mixed.stage_costs(template, load)
    layer_kinds = mixed.arch.layer_kinds
    stages = []
    for s, costs in enumerate(all_costs):
        counts = kind_counts(costs.kinds, layer_kinds, boundaries[s], boundaries[s + 1])
        stages.append(_stage(mixed, template, costs, s, counts, boundaries[s], boundaries[s + 1]))
    point = all_costs[0].point
    aggregates = PipelineAggregates.of(int(point.microbatches),
                                       {x: [st.step_s[x] for st in stages] for x in point.steps})
    throughput = point.throughput(aggregates, 1)
    metrics = ReplicaMetrics(
        ttft_s=point.ttft.value(aggregates), tpot_s=point.tpot.value(aggregates),
        e2e_latency_s=point.e2e.value(aggregates), ttft_mean_s=point.ttft_mean.value(aggregates),
        tpot_mean_s=point.tpot_mean.value(aggregates), throughput_tokens_per_s=throughput,
        requests_per_s=throughput / point.scored_tokens)
    return point, stages, metrics
