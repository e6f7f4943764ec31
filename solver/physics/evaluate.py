"""Float evaluation of a concrete plan: stage times, memory, serving metrics, objective.

This is the authority for every number a plan reports; the CP-SAT objective is only used to choose.
The serving metrics are the forms of physics/serving.py (for a static batch B in m micro-batches:
TTFT = fill(prefill), TPOT = round(decode), e2e = TTFT + output_tokens * TPOT) evaluated on the
stage times; throughput = dp * B * output_tokens / e2e (output tokens/s).

Objective (unitless, minimized): latency_weight * e2e / ideal_e2e
                                 + throughput_weight * ideal_throughput / throughput
with ideal_* from the roofline of the available GPUs (see `Normalizers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.inputs.condition import Condition
from solver.physics.architecture import LayerKind
from solver.physics.cost import CandidateCosts, CostModel, ExpertLayout, LayerCost
from solver.physics.points import Load
from solver.physics.serving import LinearForm, PipelineAggregates
from solver.physics.shapes import ParallelShape


@dataclass(frozen=True)
class Normalizers:
    """Roofline ideals that make the objective's two terms unitless."""

    ideal_e2e_s: float
    ideal_throughput_tokens_per_s: float  # per GPU when the planner chooses the GPU count
    per_gpu: bool

    @classmethod
    def of(cls, condition: Condition, model: CostModel) -> Normalizers:
        arch, w, n = model.arch, condition.workload, condition.cluster.num_gpus
        flops = model.hw.flops_per_s
        ttft = 2 * arch.active_params * w.input_tokens / (n * flops)
        tpot = arch.active_params * model.weight_bytes_per_element / (n * model.hw.hbm_bytes_per_s)
        per_gpu = not condition.cluster.fixed
        tput = flops / (2 * arch.active_params) * (1 if per_gpu else n)
        return cls(ideal_e2e_s=ttft + w.output_tokens * tpot, ideal_throughput_tokens_per_s=tput,
                   per_gpu=per_gpu)

    def objective_per_e2e_second(self, condition: Condition, costs: CandidateCosts) -> float:
        """A static batch's objective is linear in e2e: objective = k * e2e (throughput is B
        requests per e2e)."""
        o = condition.objective
        tokens_per_round = costs.shape.dp * costs.batch_size * costs.point.scored_tokens
        if self.per_gpu:
            tokens_per_round = tokens_per_round / costs.shape.gpus_used
        return (o.latency_weight / self.ideal_e2e_s
                + o.throughput_weight * self.ideal_throughput_tokens_per_s / tokens_per_round)

    def objective_form(self, condition: Condition, costs: CandidateCosts) -> LinearForm:
        """The objective as a linear form of the stage aggregates:
        latency_weight * e2e / ideal_e2e + throughput_weight * ideal_throughput / throughput,
        with 1 / throughput = seconds per scored token of a replica / dp (x GPUs used per GPU)."""
        o, shape = condition.objective, costs.shape
        per_token = costs.point.seconds_per_token_form().scaled(
            (shape.gpus_used if self.per_gpu else 1) / shape.dp)
        return costs.point.e2e.scaled(o.latency_weight / self.ideal_e2e_s) + per_token.scaled(
            o.throughput_weight * self.ideal_throughput_tokens_per_s)


@dataclass(frozen=True)
class StageEval:
    """One pipeline stage: its time, communication and memory per GPU, per step kind.

    `prefill_*` and `decode_*` name the serving point's prefill and decode roles (a static batch:
    its prefill and decode steps), the stage times plan.json reports."""

    stage: int
    first_layer: int
    last_layer: int  # inclusive
    step_s: dict[str, float]
    step_comm_s: dict[str, float]
    step_comm_bytes: dict[str, float]
    roles: dict[str, str]  # prefill | decode -> step kind
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    overhead_bytes: float

    @property
    def memory_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes + self.overhead_bytes

    @property
    def prefill_s(self) -> float:
        return self.step_s[self.roles["prefill"]]

    @property
    def decode_s(self) -> float:
        return self.step_s[self.roles["decode"]]

    @property
    def prefill_comm_s(self) -> float:
        return self.step_comm_s[self.roles["prefill"]]

    @property
    def decode_comm_s(self) -> float:
        return self.step_comm_s[self.roles["decode"]]

    @property
    def prefill_comm_bytes(self) -> float:
        return self.step_comm_bytes[self.roles["prefill"]]

    @property
    def decode_comm_bytes(self) -> float:
        return self.step_comm_bytes[self.roles["decode"]]


@dataclass(frozen=True)
class Metrics:
    """A plan's serving metrics. TTFT and TPOT at the SLO percentile (slo.percentile; a static
    batch has no spread), e2e and the means over requests; throughput in scored tokens (output
    tokens, or input tokens of a prefill-only workload) of all replicas."""

    ttft_s: float
    tpot_s: float
    e2e_latency_s: float
    throughput_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    objective: float
    ttft_mean_s: float = 0.0
    tpot_mean_s: float = 0.0
    requests_per_s: float = 0.0  # completed requests per second, all replicas


def kind_counts(kinds: tuple[LayerKind, ...], layer_kinds: tuple[LayerKind, ...], first: int,
                end: int) -> dict[LayerKind, int]:
    counts = dict.fromkeys(kinds, 0)
    for layer in range(first, end):
        counts[layer_kinds[layer]] += 1
    return counts


def _extras(costs: CandidateCosts, stage: int) -> list[LayerCost]:
    pp = costs.shape.pp
    extras = []
    if stage == 0:
        extras.append(costs.first_stage)
    if stage == pp - 1:
        extras.append(costs.last_stage)
    else:
        extras.append(costs.transfer)
    return extras


def evaluate_stage(costs: CandidateCosts, layer_kinds: tuple[LayerKind, ...], stage: int,
                   first: int, end: int) -> StageEval:
    """One pipeline stage holding transformer layers [first, end)."""
    counts = kind_counts(costs.kinds, layer_kinds, first, end)
    parts: list[tuple[LayerCost, int]] = [(costs.layer[k], n) for k, n in counts.items()]
    parts += [(extra, 1) for extra in _extras(costs, stage)]
    steps = costs.point.steps
    activation = costs.activation_bytes
    if stage == costs.shape.pp - 1:
        activation += costs.last_stage_activation_bytes
    return StageEval(
        stage=stage,
        first_layer=first,
        last_layer=end - 1,
        step_s={s: sum(c.steps[s].time_s * n for c, n in parts) for s in steps},
        step_comm_s={s: sum(c.steps[s].comm_s * n for c, n in parts) for s in steps},
        step_comm_bytes={s: sum(c.steps[s].comm_bytes * n for c, n in parts) for s in steps},
        roles=costs.point.roles,
        weights_bytes=sum(c.weight_bytes * n for c, n in parts),
        kv_cache_bytes=sum(c.kv_cache_bytes * n for c, n in parts),
        activation_bytes=activation,
        overhead_bytes=costs.overhead_bytes,
    )


def evaluate_stages(costs: CandidateCosts, layer_kinds: tuple[LayerKind, ...],
                    boundaries: list[int]) -> list[StageEval]:
    """`boundaries` = [0, b_1, ..., num_layers]: stage s holds layers [b_s, b_{s+1})."""
    return [
        evaluate_stage(costs, layer_kinds, s, boundaries[s], boundaries[s + 1])
        for s in range(len(boundaries) - 1)
    ]


def serving_metrics(condition: Condition, costs: CandidateCosts, stages: list[StageEval],
                    normalizers: Normalizers) -> Metrics:
    point = costs.point
    aggregates = PipelineAggregates.of(point.microbatches,
                                       {step: [s.step_s[step] for s in stages] for step in point.steps})
    ttft, tpot, e2e = (form.value(aggregates) for form in (point.ttft, point.tpot, point.e2e))
    ttft_mean, tpot_mean = point.ttft_mean.value(aggregates), point.tpot_mean.value(aggregates)
    shape = costs.shape
    throughput = point.throughput(aggregates, shape.dp)
    if point.seconds_per_token is None:  # a static batch: k * e2e
        objective = normalizers.objective_per_e2e_second(condition, costs) * e2e
    else:
        objective = normalizers.objective_form(condition, costs).value(aggregates)
    return Metrics(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_latency_s=e2e,
        throughput_tokens_per_s=throughput,
        throughput_tokens_per_s_per_gpu=throughput / shape.gpus_used,
        objective=objective,
        ttft_mean_s=ttft_mean,
        tpot_mean_s=tpot_mean,
        requests_per_s=throughput / point.scored_tokens,
    )


def evaluate_plan(condition: Condition, shape: ParallelShape, load: Load | int,
                  boundaries: list[int], expert_layout: ExpertLayout | None = None,
                  ) -> tuple[CandidateCosts, list[StageEval], Metrics]:
    """Float evaluation of (shape, load, split) with the shared cost model; an int load is a
    static batch."""
    model = CostModel(condition, {shape.ep: expert_layout} if expert_layout else None)
    costs = model.candidate(shape, load)
    stages = evaluate_stages(costs, model.arch.layer_kinds, boundaries)
    metrics = serving_metrics(condition, costs, stages, Normalizers.of(condition, model))
    return costs, stages, metrics
