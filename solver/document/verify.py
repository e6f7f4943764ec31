"""Solver-free verification: re-derive every hard constraint of a Plan from its Condition.

Each rule is one small function returning ConstraintCheck rows (value, limit, pass). `solve` runs
this on every plan before writing it (a failure is a bug, not a plan); `check` uses it to grade
hand-made plans. Metrics are recomputed with the shared cost model, not read from the plan.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict

from solver.document.plan import Device, Plan
from solver.inputs.condition import Condition
from solver.optimize.families import FAMILIES
from solver.physics.cost import CandidateCosts, ExpertLayout
from solver.physics.disaggregation import goodput_condition
from solver.physics.evaluate import Metrics, StageEval, evaluate_plan
from solver.physics.placement import imbalance_of_layers
from solver.physics.shapes import ParallelShape, shape_violations


class ConstraintCheck(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    value: str
    limit: str
    passed: bool
    detail: str = ""


def _row(name: str, value: object, limit: object, passed: bool, detail: str = "") -> ConstraintCheck:
    return ConstraintCheck(name=name, value=str(value), limit=str(limit), passed=passed, detail=detail)


def check_gpu_count(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    shape = plan.parallelism.shape()
    cluster = condition.cluster
    rows = [
        _row("gpu_count.available", shape.gpus_used, f"<= {cluster.num_gpus}",
             shape.gpus_used <= cluster.num_gpus),
        _row("gpu_count.parts_equal_gpus", f"{plan.gpus.model_parts} parts",
             f"{plan.gpus.used} GPUs used",
             plan.gpus.model_parts == plan.gpus.used == shape.gpus_used == len(plan.devices),
             "dp x pp x gpus per stage = GPUs used = devices listed"),
    ]
    if cluster.fixed and condition.policy.use_all_gpus:
        rows.append(_row("gpu_count.all_used", shape.gpus_used, f"= {cluster.num_gpus}",
                         shape.gpus_used == cluster.num_gpus, "policy.use_all_gpus"))
    ids = [d.gpu for d in plan.devices]
    rows.append(_row("gpu_count.one_part_per_gpu", f"{len(set(ids))} distinct ids",
                     f"0..{shape.gpus_used - 1}", sorted(ids) == list(range(shape.gpus_used))))
    return rows


def check_folding(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    s = plan.parallelism
    attention_grid = s.tp * s.attn_dp * s.sp
    rows = [_row("folding.attention_grid", f"tp*attn_dp*sp = {attention_grid}",
                 f"= {plan.gpus.per_stage} GPUs per stage", attention_grid == plan.gpus.per_stage)]
    if condition.model.is_moe:
        rows.append(_row("folding.expert_grid", f"etp*ep = {s.etp * s.ep}",
                         f"= {plan.gpus.per_stage} GPUs per stage", s.etp * s.ep == plan.gpus.per_stage))
    return rows


def check_rules(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    """Divisibility, placement and policy rules (shared with the enumeration)."""
    shape: ParallelShape = plan.parallelism.shape()
    problems = shape_violations(shape, condition, gpu_count=False)
    if not problems:
        return [_row("divisibility_and_policy", "all rules hold", "-", True)]
    return [_row("divisibility_and_policy", p, "-", False) for p in problems]


def check_layers(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    n = condition.model.num_hidden_layers
    expected = 0
    ok = len(plan.stages) == plan.parallelism.pp
    for i, stage in enumerate(plan.stages):
        ok &= stage.stage == i and stage.first_layer == expected and stage.last_layer >= stage.first_layer
        expected = stage.last_layer + 1
    ok &= expected == n
    rows = [_row("layers.each_on_one_stage", f"stages cover 0..{expected - 1}", f"0..{n - 1}", ok,
                 "contiguous, non-empty stages in order")]
    by_stage = {s.stage: s for s in plan.stages}
    mismatched = [d.gpu for d in plan.devices
                  if d.stage not in by_stage
                  or (d.first_layer, d.last_layer) != (by_stage[d.stage].first_layer,
                                                      by_stage[d.stage].last_layer)]
    rows.append(_row("layers.devices_match_stages", f"{len(mismatched)} mismatched", "0",
                     not mismatched))
    return rows


def _ep_ranks(plan: Plan, replica: int, stage: int) -> list[Device]:
    """One device per EP rank (etp rank 0) of a stage group, in EP-rank order."""
    return _ep_groups(plan).get((replica, stage), [])


def _ep_groups(plan: Plan) -> dict[tuple[int, int], list[Device]]:
    """For every (replica, stage): one device per EP rank (etp rank 0), in EP-rank order (one pass
    over the devices: 16,384-GPU plans have 2,048 groups)."""
    groups: dict[tuple[int, int], list[Device]] = {}
    for d in plan.devices:
        if d.etp_rank == 0:
            groups.setdefault((d.replica, d.stage), []).append(d)
    return {key: sorted(devices, key=lambda d: d.ep_rank) for key, devices in groups.items()}


def _placement_layers(devices: list[Device]) -> list[list[list[int]]]:
    """experts_by_gpu for each MoE layer (a single entry when one placement serves all layers)."""
    if devices and devices[0].experts_by_layer is not None:
        layers = len(devices[0].experts_by_layer)
        return [[(d.experts_by_layer or [[]] * layers)[i] for d in devices] for i in range(layers)]
    return [[d.experts for d in devices]]


def check_experts(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    card = condition.model
    if not card.is_moe:
        return []
    slots = card.num_experts + condition.policy.redundant_experts
    gaps = bad_slots = duplicates = 0
    groups = _ep_groups(plan)
    for key in sorted({(d.replica, d.stage) for d in plan.devices}):
        for layer in _placement_layers(groups.get(key, [])):
            hosted = Counter(e for gpu in layer for e in gpu)
            gaps += sum(1 for e in range(card.num_experts) if hosted.get(e, 0) == 0)
            gaps += sum(1 for e in hosted if not 0 <= e < card.num_experts)
            bad_slots += sum(1 for gpu in layer if len(gpu) * len(layer) != slots)
            duplicates += sum(len(gpu) - len(set(gpu)) for gpu in layer)
    return [
        _row("experts.every_expert_hosted", f"{gaps} missing or unknown", "0", gaps == 0,
             "every routed expert on >= 1 GPU of every EP group (and MoE layer)"),
        _row("experts.slots_per_gpu", f"{bad_slots} GPUs off", f"{slots} slots / ep each",
             bad_slots == 0, "num_experts + redundant_experts spread evenly"),
        _row("experts.no_duplicate_on_gpu", duplicates, "0", duplicates == 0),
    ]


def expert_layout_of(condition: Condition, plan: Plan) -> ExpertLayout | None:
    """Slots and load imbalance recomputed from the plan's own placement and the condition's
    loads (independent of the placement solver)."""
    if not condition.model.is_moe or not plan.devices:
        return None
    devices = _ep_ranks(plan, 0, 0)
    layers = _placement_layers(devices)
    vectors = condition.expert_load_vectors() or [[1.0] * condition.model.num_experts]
    if len(vectors) == 1 and len(layers) > 1:
        vectors = vectors * len(layers)
    if len(layers) == 1 and len(vectors) > 1:
        layers = layers * len(vectors)
    return ExpertLayout(slots_per_gpu=len(devices[0].experts),
                        imbalance=imbalance_of_layers(layers, vectors))


def evaluate_plan_document(condition: Condition,
                           plan: Plan) -> tuple[CandidateCosts, list[StageEval], Metrics]:
    """Re-evaluate a plan document as written: its shape, batch, layer map and expert placement.

    The one way the verifier, the plan document and `check`'s regret see a plan's numbers.
    """
    boundaries = [s.first_layer for s in plan.stages] + [condition.model.num_hidden_layers]
    return evaluate_plan(condition, plan.parallelism.shape(), plan.load(), boundaries,
                         expert_layout_of(condition, plan))


def check_memory_and_slo(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    """Every constraint family (optimize/families.py) on the plan's float evaluation, and the
    plan's reported metrics against the cost model."""
    costs, stages, metrics = evaluate_plan_document(condition, plan)
    rows = [*_steady_state_rows(costs),
            *(_row(*row) for family in FAMILIES for row in family.verify(condition, stages, metrics))]
    reported = plan.metrics
    same = all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in (
        (reported.ttft_ms, metrics.ttft_s * 1e3), (reported.tpot_ms, metrics.tpot_s * 1e3),
        (reported.throughput_tokens_per_s, metrics.throughput_tokens_per_s),
        (reported.objective, metrics.objective)))
    rows.append(_row("metrics.recomputed", "plan metrics match the cost model" if same else
                     "plan metrics differ from the cost model", "equal", same))
    return rows


def _steady_state_rows(costs: CandidateCosts) -> list[ConstraintCheck]:
    """Continuous batching: the chunk budget feeds the active sequences (decodes + prompt tokens per
    step <= max-num-batched-tokens), else the operating point the metrics describe cannot exist."""
    state = costs.point.state
    if state is None or not hasattr(state, "feasible"):
        return []
    load = float(state.decode_seqs + state.prefill_tokens)
    return [_row("serving.steady_state", f"{load:,.1f} tokens per step",
                 f"<= {float(state.budget):,.0f} (max-num-batched-tokens)", bool(state.feasible),
                 "decodes + prompt tokens of the active sequences, per micro-batch and step")]


CHECKS = (check_gpu_count, check_folding, check_rules, check_experts)


def verify_plan(condition: Condition, plan: Plan) -> list[ConstraintCheck]:
    """Every rule; memory, SLOs and metrics only when the layer map is sound enough to evaluate.
    A disaggregated plan (plan.pools) is checked pool by pool (document/verify_pools.py)."""
    if plan.pools is not None:
        from solver.document.verify_pools import verify_pools  # it checks each pool with this

        return verify_pools(condition, plan)
    if plan.comparison is not None:  # serving.mode auto, aggregated won: it maximized goodput
        condition = goodput_condition(condition)
    rows: list[ConstraintCheck] = []
    for check in CHECKS:
        rows += check(condition, plan)
    layer_rows = check_layers(condition, plan)
    rows += layer_rows
    expert_rows = [r for r in rows if r.name.startswith("experts.")]
    if all(r.passed for r in layer_rows[:1] + expert_rows):
        rows += check_memory_and_slo(condition, plan)
    else:
        rows.append(_row("memory_and_slo", "not evaluated", "-", False,
                         "the layer or expert map is invalid, so memory and latency are undefined"))
    return rows


def violations(rows: list[ConstraintCheck]) -> list[ConstraintCheck]:
    return [r for r in rows if not r.passed]
