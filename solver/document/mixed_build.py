"""Build a MixedPlan from the optimizer's replica groups (document/mixed_plan.py says what each
field means). GPUs are numbered pool by pool in the file's order; each replica takes the next free
GPUs of each pool its stages use, stage by stage."""

from __future__ import annotations

from solver.document.mixed_plan import (
    GB,
    Comparison,
    GpuPoolPlan,
    GroupChoice,
    MixedDevice,
    MixedPlan,
    ReplicaGroup,
    evaluate_group,
    replica_group,
)
from solver.document.plan import GpuCount, Parallelism, PlanMetrics, ServingBlock, SolverInfo, StagePlan
from solver.inputs.condition import Condition


def _devices(cond: Condition, choices: list[GroupChoice]) -> list[MixedDevice]:
    pools = cond.mixed.pools
    first = [sum(p.num_gpus for p in pools[:i]) for i in range(len(pools))]
    node_offset = [sum(p.num_gpus // p.gpus_per_node for p in pools[:i]) for i in range(len(pools))]
    taken = [0] * len(pools)
    devices, replica = [], 0
    for g, choice in enumerate(choices):
        _, stages, _ = evaluate_group(cond, choice)
        for _ in range(choice.count):
            for option, stage in zip(choice.template.stages, stages, strict=True):
                pool = pools[option.pool]
                for rank in range(option.tp):
                    local = taken[option.pool]
                    taken[option.pool] += 1
                    devices.append(MixedDevice(
                        gpu=first[option.pool] + local, pool=pool.name, kind=pool.gpu_name,
                        node=node_offset[option.pool] + local // pool.gpus_per_node,
                        local_rank=local % pool.gpus_per_node, group=g, replica=replica,
                        stage=stage.stage, tp_rank=rank, first_layer=stage.first_layer,
                        last_layer=stage.last_layer, memory_gb=stage.memory_bytes / GB))
            replica += 1
    return sorted(devices, key=lambda d: d.gpu)


def _pools(cond: Condition, groups: list[ReplicaGroup], total: float) -> list[GpuPoolPlan]:
    out = []
    names = [p.name for p in cond.mixed.pools]
    first = 0
    for pool in cond.mixed.pools:
        used = layers = 0
        share = 0.0
        for group in groups:
            mine = [s for s in group.stages if s.pool == pool.name]
            used += group.count * sum(s.tp for s in mine)
            layers += group.count * sum(s.num_layers for s in mine)
            held = sum(s.num_layers for s in mine) / sum(s.num_layers for s in group.stages)
            share += group.count * group.metrics.throughput_tokens_per_s * held
        out.append(GpuPoolPlan(
            name=pool.name, gpu=pool.gpu_name, num_nodes=pool.num_gpus // pool.gpus_per_node,
            gpus_per_node=pool.gpus_per_node, num_gpus=pool.num_gpus, gpus_used=used,
            first_gpu=first, layers_held=layers, throughput_share=share / total if total else 0.0))
        first += pool.num_gpus
    assert len(out) == len(names)
    return out


def _largest(groups: list[ReplicaGroup]) -> int:
    sizes = [g.count * g.gpus_per_replica for g in groups]
    return sizes.index(max(sizes))


def _single_kind_fields(cond: Condition, group: ReplicaGroup, choice: GroupChoice) -> dict[str, object]:
    first = choice.template.stages[0]
    point, stages, m = evaluate_group(cond, choice)
    return {
        "gpu": group.stages[0].gpu,
        "parallelism": Parallelism(tp=first.tp, pp=choice.template.pp, dp=group.count, ep=first.ep,
                                   etp=first.etp, attn_dp=1, sp=1),
        "batch_size": group.max_num_seqs, "microbatches": int(point.microbatches),
        "stages": [StagePlan(stage=s.stage, first_layer=s.first_layer, last_layer=s.last_layer,
                             num_layers=s.num_layers, holds_embedding=s.stage == 0,
                             holds_lm_head=s.stage == choice.template.pp - 1,
                             prefill_ms=s.step_s["chunk"] * 1e3, decode_ms=s.step_s["mix"] * 1e3,
                             memory_gb=s.memory_bytes / GB) for s in stages],
        "serving": ServingBlock(
            mode="continuous", max_num_seqs=group.max_num_seqs, chunk_tokens=group.chunk_tokens,
            utilization=group.utilization, active_sequences=float(point.active_sequences),
            prefill_steps=int(point.state.prefill_steps),
            prefill_step_share=float(point.state.prefill_step_share),
            percentile=cond.slo.percentile, ttft_mean_ms=m.ttft_mean_s * 1e3,
            tpot_mean_ms=m.tpot_mean_s * 1e3, requests_per_s=m.requests_per_s * group.count,
            requests_per_s_per_gpu=m.requests_per_s / group.gpus_per_replica,
            throughput_counts="output tokens" if point.output_tokens > 1 else "input tokens"),
    }


def build_mixed_plan(cond: Condition, choices: list[GroupChoice], status: str, solver: SolverInfo,
                     comparison: Comparison | None = None) -> MixedPlan:
    groups = [replica_group(cond, c) for c in choices]
    total = sum(g.count * g.metrics.throughput_tokens_per_s for g in groups)
    gpus = cond.mixed.num_gpus
    used = sum(g.count * g.gpus_per_replica for g in groups)
    big = _largest(groups)
    group = groups[big]
    worst = {k: max(getattr(g.metrics, k) for g in groups)
             for k in ("ttft_ms", "tpot_ms", "e2e_latency_ms")}
    return MixedPlan(
        condition=cond.name, status=status, model=cond.model.name,
        gpus=GpuCount(available=gpus, used=used, idle=gpus - used, per_stage=group.stages[0].tp,
                      per_replica=group.gpus_per_replica, model_parts=used),
        devices=_devices(cond, choices),
        metrics=PlanMetrics(**worst, throughput_tokens_per_s=total,
                            throughput_tokens_per_s_per_gpu=total / gpus, objective=total / gpus),
        solver=solver, gpu_pools=_pools(cond, groups, total), replicas=groups, baselines=comparison,
        **_single_kind_fields(cond, group, choices[big]),  # type: ignore[arg-type]
    )
