"""The numbers the reports show beyond plan.json, computed once by the planner.

plan.md, report.html and the batch summary only format what they are given (issue 12): the plan
as written evaluated by the shared cost model (stage memory parts and times at full precision, the
micro-batches, the metrics), the objective's normalizers, the model's parameter counts, the spread
(max, mean, max/mean) of every balance quantity over GPUs and stages, the terms of the pipeline
formulas, and the expert placement against the greedy. The runner-ups are in alternatives.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solver.document.plan import Plan
from solver.document.verify import evaluate_plan_document
from solver.inputs.condition import Condition
from solver.optimize.problem import PlanningProblem
from solver.physics.architecture import Architecture
from solver.physics.evaluate import Metrics, Normalizers, StageEval
from solver.physics.placement import ExpertPlacement
from solver.physics.serving import PipelineAggregates, ServingPoint

# Per-GPU quantities (Device fields) and per-stage quantities (StagePlan fields) whose balance the
# reports show.
GPU_QUANTITIES = ("prefill_compute_ms", "decode_compute_ms", "memory_gb", "prefill_comm_bytes",
                  "decode_comm_bytes")
STAGE_QUANTITIES = ("prefill_ms", "decode_ms", "memory_gb")


@dataclass(frozen=True)
class Spread:
    """One quantity over the GPUs (or stages) of a plan: the largest, the mean and their ratio
    (1.0 when the mean is 0), the figure a reviewer reads as load balance."""

    max: float
    mean: float
    max_over_mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        mean, top = sum(values) / len(values), max(values)
        # max >= mean: a ratio below 1 is the mean's rounding (equal values summed and divided)
        return cls(top, mean, max(1.0, top / mean) if mean else 1.0)


@dataclass(frozen=True)
class ModelFigures:
    total_params: int
    active_params: float  # per token
    kv_elements_per_token_per_layer: int
    layer_kinds: tuple[tuple[str, int], ...]  # (kind label, number of layers) per distinct kind


@dataclass(frozen=True)
class ExpertFigures:
    """The planned expert placement against the greedy EPLB, and EP group 0's token shares."""

    gain_over_greedy: float  # greedy max/mean token load / planned - 1
    proven_bound: float  # lower bound of max/mean token load for these replica counts (1.0: none)
    share_min: float | None  # routed-token share of a GPU of EP group 0 (None: no shares)
    share_max: float | None
    share_mean: float | None


@dataclass(frozen=True)
class PlanFigures:
    """The plan as written (its expert placement included) evaluated once, and its balance."""

    stages: tuple[StageEval, ...]  # seconds and bytes per stage, unrounded
    metrics: Metrics  # the same numbers plan.json reports, in seconds
    prefill_microbatches: int
    decode_microbatches: int
    sequences_per_microbatch: int
    prefill_sum_ms: float  # the TTFT and TPOT formulas' terms: stage times of one micro-batch
    prefill_max_ms: float
    decode_sum_ms: float
    decode_max_ms: float
    normalizers: Normalizers  # the objective's ideal e2e and throughput
    model: ModelFigures
    per_gpu: dict[str, Spread]  # GPU_QUANTITIES
    per_stage: dict[str, Spread]  # STAGE_QUANTITIES
    tokens_per_s_per_user: float | None  # 1000 / TPOT ms: the decode speed one user sees
    experts: ExpertFigures | None  # None: no expert placement was computed
    point: ServingPoint  # the operating point's steps and metric forms (the formulas plan.md shows)
    aggregates: PipelineAggregates  # S, M and rounds of every step kind over the stages


def plan_figures(plan: Plan, problem: PlanningProblem) -> PlanFigures:
    return figures_of(plan, problem.condition, problem.cost_model.arch, problem.normalizers,
                      problem.placements.get(plan.parallelism.ep))


def figures_of(plan: Plan, condition: Condition, arch: Architecture, normalizers: Normalizers,
               searched: ExpertPlacement | None) -> PlanFigures:
    """The figures of a plan under `condition` (its own, or a disaggregated pool's), with the
    objective's normalizers and the expert placement searched for its EP degree."""
    costs, stages, metrics = evaluate_plan_document(condition, plan)
    prefill = [s.prefill_s * 1e3 for s in stages]
    decode = [s.decode_s * 1e3 for s in stages]
    tpot_ms = plan.metrics.tpot_ms
    return PlanFigures(
        stages=tuple(stages),
        metrics=metrics,
        prefill_microbatches=costs.microbatches,
        decode_microbatches=costs.microbatches,
        sequences_per_microbatch=costs.point.sequences_per_microbatch,
        prefill_sum_ms=sum(prefill), prefill_max_ms=max(prefill),
        decode_sum_ms=sum(decode), decode_max_ms=max(decode),
        normalizers=normalizers,
        model=ModelFigures(arch.total_params, arch.active_params, arch.kv_elements_per_token_per_layer,
                           tuple((k.label, arch.layer_kinds.count(k)) for k in arch.distinct_kinds)),
        per_gpu={q: Spread.of([getattr(d, q) for d in plan.devices]) for q in GPU_QUANTITIES},
        per_stage={q: Spread.of([getattr(s, q) for s in plan.stages]) for q in STAGE_QUANTITIES},
        tokens_per_s_per_user=1000.0 / tpot_ms if tpot_ms > 0 else None,
        experts=_expert_figures(plan, searched),
        point=costs.point,
        aggregates=PipelineAggregates.of(costs.point.microbatches, {
            step: [s.step_s[step] for s in stages] for step in costs.point.steps}),
    )


def _expert_figures(plan: Plan, searched: ExpertPlacement | None) -> ExpertFigures | None:
    placement = plan.expert_placement
    if placement is None:
        return None
    shares = [d.expert_token_share or 0.0 for d in plan.devices
              if (d.replica, d.stage, d.etp_rank) == (0, 0, 0)]
    return ExpertFigures(
        gain_over_greedy=placement.greedy_max_over_mean_token_load / placement.max_over_mean_token_load - 1,
        proven_bound=searched.bound_imbalance if searched else 1.0,
        share_min=min(shares) if shares else None,
        share_max=max(shares) if shares else None,
        share_mean=sum(shares) / len(shares) if shares else None,
    )
