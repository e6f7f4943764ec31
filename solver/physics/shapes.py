"""Parallel shapes: every (tp, pp, dp, ep, etp, attn_dp, sp) the cluster and the model admit.

GPU accounting (docs/design.md §2): attention and experts are two grids folded onto the same GPUs
of a pipeline stage,

    gpus per stage   = tp * attn_dp * sp = etp * ep     (dense models: ep = etp = 1, attn_dp = 1)
    gpus per replica = pp * gpus per stage
    gpus used        = dp * gpus per replica

Rank order (fastest first): tp, sp, attn_dp inside a stage, then stage, then replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.inputs.condition import DEGREE_NAMES, Condition


class _GpuAccounting:
    """GPU counts of a shape; the degrees are ints (ParallelShape) or arrays (ShapeGrid)."""

    tp: Any
    pp: Any
    dp: Any
    attn_dp: Any
    sp: Any

    @property
    def gpus_per_stage(self) -> Any:
        return self.tp * self.attn_dp * self.sp

    @property
    def gpus_per_replica(self) -> Any:
        return self.pp * self.gpus_per_stage

    @property
    def gpus_used(self) -> Any:
        return self.dp * self.gpus_per_replica


@dataclass(frozen=True, order=True)
class ParallelShape(_GpuAccounting):
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    etp: int = 1
    attn_dp: int = 1
    sp: int = 1

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in DEGREE_NAMES}

    @property
    def label(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}", f"DP{self.dp}"]
        if self.ep > 1 or self.etp > 1:
            parts += [f"EP{self.ep}", f"ETP{self.etp}"]
        if self.attn_dp > 1:
            parts.append(f"ADP{self.attn_dp}")
        if self.sp > 1:
            parts.append(f"SP{self.sp}")
        return " ".join(parts)

    @property
    def family(self) -> str:
        """Coarse family for runner-up tables: which kinds of parallelism are in use."""
        used = [n for n in ("tp", "pp", "ep", "attn_dp", "sp") if getattr(self, n) > 1]
        return "+".join(used) if used else "single-gpu"


@dataclass(frozen=True, eq=False)
class ShapeGrid(_GpuAccounting):
    """Many shapes as arrays of degrees (one entry per candidate), for the cost model's grid."""

    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray
    etp: np.ndarray
    attn_dp: np.ndarray
    sp: np.ndarray

    @classmethod
    def of(cls, shapes: list[ParallelShape]) -> ShapeGrid:
        return cls(*(np.array([getattr(s, n) for s in shapes], dtype=np.int64) for n in DEGREE_NAMES))


SP_MIN_INPUT_TOKENS = 8192  # below this, sp > 1 is left out unless policy.sp asks for it


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def group_within_node(group_size: Any, gpus_per_node: int) -> Any:
    """A group of consecutive ranks (aligned to its size) sits inside one node (elementwise for
    arrays of group sizes)."""
    return (group_size <= gpus_per_node) & (gpus_per_node % group_size == 0)


def shape_violations(shape: ParallelShape, condition: Condition, gpu_count: bool = True) -> list[str]:
    """Every divisibility / placement rule the shape breaks (empty list: the shape is valid).

    Shared by the enumeration, the verifier and `check`, so a hand-made plan is judged by the
    same rules as the planner's own.
    """
    problems = _attention_violations(shape, condition)
    problems += _expert_violations(shape, condition) if condition.model.is_moe else (
        [] if (shape.ep, shape.etp, shape.attn_dp) == (1, 1, 1)
        else ["a dense model has no expert grid: ep, etp and attn_dp must be 1"])
    problems += _sequence_violations(shape, condition)
    problems += _placement_violations(shape, condition)
    if gpu_count:
        problems += _gpu_count_violations(shape, condition)
    return problems


def _attention_violations(shape: ParallelShape, condition: Condition) -> list[str]:
    """Tensor parallelism must split heads, KV heads and the dense FFN evenly; pp <= layers."""
    card, problems = condition.model, []
    if card.num_attention_heads % shape.tp:
        problems.append(f"tp={shape.tp} does not divide num_attention_heads={card.num_attention_heads}")
    kv = card.kv_heads
    if not card.is_mla and kv % shape.tp and shape.tp % kv:
        problems.append(f"tp={shape.tp} and num_key_value_heads={kv}: neither divides the other")
    dense_layers = (not card.is_moe) or card.first_k_dense_layers > 0
    if dense_layers and card.intermediate_size and card.intermediate_size % shape.tp:
        problems.append(f"tp={shape.tp} does not divide intermediate_size={card.intermediate_size}")
    if shape.pp > card.num_hidden_layers:
        problems.append(f"pp={shape.pp} exceeds num_hidden_layers={card.num_hidden_layers}")
    return problems


def _expert_violations(shape: ParallelShape, condition: Condition) -> list[str]:
    """Folding identity, experts (and redundant slots) over ep, expert width over etp."""
    card, problems = condition.model, []
    if shape.etp * shape.ep != shape.gpus_per_stage:
        problems.append(f"folding identity broken: etp*ep={shape.etp * shape.ep} but "
                        f"tp*attn_dp*sp={shape.gpus_per_stage}")
    redundant = condition.policy.redundant_experts
    if redundant == 0 and card.num_experts % shape.ep:
        problems.append(f"ep={shape.ep} does not divide num_experts={card.num_experts}")
    elif redundant and (card.num_experts + redundant) % shape.ep:
        problems.append(f"ep={shape.ep} does not divide the {card.num_experts + redundant} expert slots "
                        f"(num_experts {card.num_experts} + policy.redundant_experts {redundant})")
    elif redundant and redundant > card.num_experts * (shape.ep - 1):
        problems.append(f"policy.redundant_experts={redundant} cannot be placed on ep={shape.ep} "
                        "GPUs (at most one replica of an expert per GPU)")
    if card.moe_intermediate_size and card.moe_intermediate_size % shape.etp:
        problems.append(f"etp={shape.etp} does not divide moe_intermediate_size={card.moe_intermediate_size}")
    return problems


def _sequence_violations(shape: ParallelShape, condition: Condition) -> list[str]:
    tokens, problems = condition.workload.input_tokens, []
    if shape.sp > tokens:
        problems.append(f"sp={shape.sp} exceeds input_tokens={tokens}")
    if shape.sp > 1 and condition.policy.sp is None and tokens < SP_MIN_INPUT_TOKENS:
        problems.append(f"sp={shape.sp} for a {tokens}-token prompt: sequence parallelism is "
                        f"considered from {SP_MIN_INPUT_TOKENS} input tokens (pin policy.sp to override)")
    return problems


def _placement_violations(shape: ParallelShape, condition: Condition) -> list[str]:
    """TP groups inside a node (policy.tp_within_node) and the policy's degree lists."""
    policy, per_node, problems = condition.policy, condition.cluster.gpus_per_node, []
    for name in ("tp", "etp"):
        size = getattr(shape, name)
        if policy.tp_within_node and not group_within_node(size, per_node):
            problems.append(_within_node_reason(name, size, per_node))
    for name in DEGREE_NAMES:
        if not policy.allows(name, getattr(shape, name)):
            problems.append(f"{name}={getattr(shape, name)} is not in policy.{name}")
    return problems


def _within_node_reason(name: str, size: int, per_node: int) -> str:
    """Why a TP group cannot sit inside one node: too large, or (3 of 8) not a divisor of the
    node: groups of consecutive ranks tile a node only when their size divides it."""
    if size > per_node:
        return (f"{name}={size} is larger than a node of {per_node} GPUs "
                "(policy.tp_within_node: a TP group stays inside one node)")
    return (f"{name}={size} does not divide the {per_node} GPUs of a node "
            "(policy.tp_within_node: TP groups tile a node)")


def _gpu_count_violations(shape: ParallelShape, condition: Condition) -> list[str]:
    cluster = condition.cluster
    used = shape.gpus_used
    if used > cluster.num_gpus:
        return [f"uses {used} GPUs but only {cluster.num_gpus} are available"]
    if cluster.fixed and condition.policy.use_all_gpus and used != cluster.num_gpus:
        return [f"uses {used} of {cluster.num_gpus} GPUs (policy.use_all_gpus requires all)"]
    return []


def enumerate_shapes(condition: Condition) -> list[ParallelShape]:
    """All valid shapes, in a fixed order (determinism)."""
    card, cluster = condition.model, condition.cluster
    shapes: list[ParallelShape] = []
    for total in _gpu_totals(condition):
        for dp in divisors(total):
            if not cluster.fixed and dp != 1:
                continue  # ample GPUs: one replica; replicas scale throughput linearly
            for pp in divisors(total // dp):
                stage = total // (dp * pp)
                shapes += [
                    s for s in _stage_shapes(stage, pp, dp, card.is_moe)
                    if not shape_violations(s, condition)
                ]
    return sorted(set(shapes))


def _gpu_totals(condition: Condition) -> list[int]:
    """GPU counts to consider: all of them, or (idle GPUs allowed / ample GPUs) the sizes people
    deploy: a divisor of a node, or whole nodes."""
    cluster = condition.cluster
    if cluster.fixed and condition.policy.use_all_gpus:
        return [cluster.num_gpus]
    per_node = cluster.gpus_per_node
    whole_nodes = [k * per_node for k in geometric_grid(cluster.num_gpus // per_node)]
    sizes = set(divisors(per_node)) | set(whole_nodes)
    return sorted(n for n in sizes if n <= cluster.num_gpus)


def geometric_grid(limit: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, ... (x2 and x1.5 steps) up to `limit`.

    The grid is a fixed sequence cut at the limit (the limit itself is not added), so raising a
    limit only ever adds choices: a higher batch or GPU limit can never make the optimum worse.
    """
    grid: set[int] = set()
    power = 1
    while power <= limit:
        grid.add(power)
        if power >= 2 and power * 3 // 2 <= limit:
            grid.add(power * 3 // 2)
        power *= 2
    return sorted(grid)


def _stage_shapes(stage: int, pp: int, dp: int, is_moe: bool) -> list[ParallelShape]:
    out: list[ParallelShape] = []
    for tp in divisors(stage):
        for sp in divisors(stage // tp):
            attn_dp = stage // (tp * sp)
            if not is_moe:
                if attn_dp == 1:
                    out.append(ParallelShape(tp=tp, pp=pp, dp=dp, sp=sp))
                continue
            for etp in divisors(stage):
                out.append(
                    ParallelShape(tp=tp, pp=pp, dp=dp, ep=stage // etp, etp=etp, attn_dp=attn_dp, sp=sp)
                )
    return out
