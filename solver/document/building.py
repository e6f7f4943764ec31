"""A Plan document built from a chosen candidate and layer split: the device map, the stages, the
serving block and the metrics, every number from the float evaluator (solver/physics/evaluate.py)."""

from __future__ import annotations

from solver.document.plan import (
    GB,
    PLACEMENT_METHODS,
    Device,
    ExpertPlacementSummary,
    GpuCount,
    MemoryBreakdown,
    Parallelism,
    Plan,
    PlanMetrics,
    SolverInfo,
    StagePlan,
)
from solver.document.serving import serving_block
from solver.inputs.condition import Condition
from solver.physics.cost import ExpertLayout
from solver.physics.evaluate import StageEval, evaluate_plan
from solver.physics.placement import ExpertPlacement
from solver.physics.points import Load
from solver.physics.shapes import ParallelShape


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
