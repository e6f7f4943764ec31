"""Parallel-shape enumeration and the shape rules (DESIGN.md §2), against hand-made lists.

    gpus per stage = tp * attn_dp * sp = etp * ep;  gpus used = dp * pp * gpus per stage
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.physics.shapes import (
    ParallelShape,
    divisors,
    enumerate_shapes,
    group_within_node,
    shape_violations,
)


def _condition(model: str = "llama-3.1-70b", *, gpu: str = "h100-sxm-80gb",
               num_nodes: int | None = 1, input_tokens: int = 8192,
               policy: dict[str, Any] | None = None,
               hardware: dict[str, Any] | None = None):
    hw: dict[str, Any] = {"gpu": gpu, **(hardware or {})}
    if num_nodes is not None:
        hw["num_nodes"] = num_nodes
    data: dict[str, Any] = {
        "model": model,
        "precision": {"weights": "bf16", "kv_cache": "bf16", "activations": "bf16"},
        "hardware": hw,
        "workload": {"input_tokens": input_tokens, "output_tokens": 256, "batch_size": 8},
    }
    if policy:
        data["policy"] = policy
    return build_condition(data, "test", "test")


def _tuples(shapes: list[ParallelShape]) -> set[tuple[int, int, int, int]]:
    """(tp, pp, dp, sp) of dense shapes."""
    return {(s.tp, s.pp, s.dp, s.sp) for s in shapes}


# Llama-3.1-70B on one 8-GPU node, every GPU used. tp must divide 64 heads, be compatible with 8 KV
# heads and divide 28672 (= 2^12 * 7): 1, 2, 4, 8 all qualify. tp * pp * dp * sp = 8, with
# ep = etp = attn_dp = 1. Written out: (tp, pp, dp, sp)
LLAMA70B_8GPU = {
    (8, 1, 1, 1),
    (4, 2, 1, 1), (4, 1, 2, 1), (4, 1, 1, 2),
    (2, 4, 1, 1), (2, 1, 4, 1), (2, 1, 1, 4), (2, 2, 2, 1), (2, 2, 1, 2), (2, 1, 2, 2),
    (1, 8, 1, 1), (1, 1, 8, 1), (1, 1, 1, 8), (1, 4, 2, 1), (1, 4, 1, 2), (1, 2, 4, 1),
    (1, 1, 4, 2), (1, 2, 1, 4), (1, 1, 2, 4), (1, 2, 2, 2),
}


def test_llama70b_on_8_gpus_exact_shape_list() -> None:
    shapes = enumerate_shapes(_condition())
    assert len(shapes) == len(LLAMA70B_8GPU) == 20
    assert _tuples(shapes) == LLAMA70B_8GPU
    for s in shapes:
        assert (s.ep, s.etp, s.attn_dp) == (1, 1, 1)
        assert s.gpus_used == 8


def test_short_prompts_leave_sequence_parallelism_out_unless_pinned() -> None:
    short = enumerate_shapes(_condition(input_tokens=2048))
    assert _tuples(short) == {t for t in LLAMA70B_8GPU if t[3] == 1}
    pinned = enumerate_shapes(_condition(input_tokens=2048, policy={"sp": [1, 2, 4, 8]}))
    assert _tuples(pinned) == LLAMA70B_8GPU


def test_enumeration_is_sorted_and_unique() -> None:
    shapes = enumerate_shapes(_condition())
    assert shapes == sorted(set(shapes))


def test_policy_lists_restrict_degrees() -> None:
    shapes = enumerate_shapes(_condition(policy={"tp": [4, 8], "pp": [1]}))
    assert _tuples(shapes) == {(8, 1, 1, 1), (4, 1, 2, 1), (4, 1, 1, 2)}


def test_policy_sp_and_dp_lists() -> None:
    shapes = enumerate_shapes(_condition(policy={"sp": [1], "dp": [1, 2]}))
    expected = {t for t in LLAMA70B_8GPU if t[3] == 1 and t[2] in (1, 2)}
    assert _tuples(shapes) == expected
    assert expected == {(8, 1, 1, 1), (4, 2, 1, 1), (4, 1, 2, 1), (2, 4, 1, 1), (2, 2, 2, 1),
                        (1, 8, 1, 1), (1, 4, 2, 1)}


def test_sp_limited_by_input_tokens() -> None:
    # 4 input tokens: sp = 8 cannot split them
    shapes = enumerate_shapes(_condition(input_tokens=4, policy={"sp": [1, 2, 4, 8]}))
    assert _tuples(shapes) == {t for t in LLAMA70B_8GPU if t[3] <= 4}
    assert len(shapes) == 19


def test_tp_across_nodes_only_when_policy_allows() -> None:
    # Llama-3.1-405B (128 heads, 8 KV heads, ffn 53248 = 2^12 * 13) on 2 x 8 H100
    within = enumerate_shapes(_condition("llama-3.1-405b", num_nodes=2))
    assert max(s.tp for s in within) == 8
    anywhere = enumerate_shapes(_condition("llama-3.1-405b", num_nodes=2,
                                           policy={"tp_within_node": False}))
    assert max(s.tp for s in anywhere) == 16
    assert ParallelShape(tp=16) in anywhere and ParallelShape(tp=16) not in within


def test_ample_gpus_one_replica_deployable_counts() -> None:
    """Ample GPUs: one replica; counts are divisors of a node or whole nodes (x2 / x1.5 grid)."""
    cond = _condition("llama-3.1-8b", num_nodes=None, hardware={"max_gpus": 4})
    shapes = enumerate_shapes(cond)
    assert all(s.dp == 1 for s in shapes)
    assert {s.gpus_used for s in shapes} == {1, 2, 4}
    assert ParallelShape() in shapes  # one GPU
    big = _condition("llama-3.1-8b", num_nodes=None, hardware={"max_gpus": 100})
    assert {s.gpus_used for s in enumerate_shapes(big)} == {1, 2, 4, 8, 16, 24, 32, 48, 64, 96}


# ---- MoE -----------------------------------------------------------------------------------------


def _brute_force_mixtral_4gpu() -> set[ParallelShape]:
    """Every degree tuple from 1..4 that satisfies the rules, checked one by one."""
    out = set()
    for tp, pp, dp, ep, etp, adp, sp in itertools.product(range(1, 5), repeat=7):
        stage = tp * adp * sp
        ok = (
            dp * pp * stage == 4  # use all 4 GPUs
            and etp * ep == stage  # folding identity
            and 32 % tp == 0  # attention heads
            and (8 % tp == 0 or tp % 8 == 0)  # KV heads
            and 8 % ep == 0  # experts
            and 14336 % etp == 0  # expert width
            and 4 % tp == 0  # tp inside a node of 4
        )
        if ok:
            out.add(ParallelShape(tp=tp, pp=pp, dp=dp, ep=ep, etp=etp, attn_dp=adp, sp=sp))
    return out


def test_mixtral_on_4_gpus_matches_brute_force() -> None:
    cond = _condition("mixtral-8x7b", gpu="a100-sxm-80gb", hardware={"gpus_per_node": 4})
    shapes = enumerate_shapes(cond)
    expected = _brute_force_mixtral_4gpu()
    # count by hand: stage of 4 GPUs -> 6 (tp, sp, attn_dp) x 3 etp = 18 (dp=pp=1);
    # stage of 2 -> 3 x 2 = 6 for each of (pp=2) and (dp=2); stage of 1 -> 1 for each of 3 splits
    assert len(expected) == 18 + 2 * 6 + 3 == 33
    assert set(shapes) == expected


@pytest.mark.parametrize("model,gpu,nodes,gpn", [
    ("mixtral-8x7b", "h100-sxm-80gb", 1, 8),
    ("qwen3-30b-a3b", "h100-sxm-80gb", 1, 2),
    ("mixtral-8x22b", "h100-sxm-80gb", 2, 8),
    ("gpt-oss-120b", "h100-sxm-80gb", 1, 4),
])
def test_every_moe_shape_obeys_folding_and_expert_rules(model: str, gpu: str, nodes: int,
                                                        gpn: int) -> None:
    cond = _condition(model, gpu=gpu, num_nodes=nodes, hardware={"gpus_per_node": gpn})
    card = cond.model
    shapes = enumerate_shapes(cond)
    assert shapes
    for s in shapes:
        assert s.etp * s.ep == s.tp * s.attn_dp * s.sp
        assert card.num_experts % s.ep == 0
        assert card.moe_intermediate_size % s.etp == 0
        assert card.num_attention_heads % s.tp == 0
        assert s.dp * s.pp * s.tp * s.attn_dp * s.sp == nodes * gpn
        assert not shape_violations(s, cond)


def test_moe_enumeration_includes_attention_dp_with_expert_parallel() -> None:
    cond = _condition("mixtral-8x7b")
    shapes = enumerate_shapes(cond)
    assert ParallelShape(tp=2, ep=2, etp=2, attn_dp=2, dp=2) in shapes
    assert ParallelShape(tp=1, ep=8, etp=1, attn_dp=8) in shapes
    # ep = 16 never: Mixtral has 8 experts (and 8 GPUs)
    assert all(s.ep <= 8 for s in shapes)


# ---- shape_violations names the broken rule ------------------------------------------------------


def test_violation_tp3_names_heads_kv_and_ffn() -> None:
    problems = shape_violations(ParallelShape(tp=3), _condition(), gpu_count=False)
    text = "\n".join(problems)
    assert "tp=3 does not divide num_attention_heads=64" in text
    assert "num_key_value_heads=8" in text
    assert "tp=3 does not divide intermediate_size=28672" in text
    # 3 GPUs fit in a node of 8; the reason is that 3 does not divide it (issue 15)
    assert "tp=3 does not divide the 8 GPUs of a node (policy.tp_within_node" in text
    assert "does not fit inside a node" not in text


def test_violation_ep_not_dividing_experts() -> None:
    cond = _condition("qwen3-30b-a3b")  # 128 experts
    problems = shape_violations(ParallelShape(tp=1, attn_dp=3, ep=3, etp=1), cond, gpu_count=False)
    assert any("ep=3 does not divide num_experts=128" in p for p in problems)
    assert not any("folding" in p for p in problems)


def test_violation_ep_exceeding_experts() -> None:
    cond = _condition("mixtral-8x7b", num_nodes=2)
    problems = shape_violations(ParallelShape(tp=2, attn_dp=8, ep=16, etp=1), cond)
    assert problems == ["ep=16 does not divide num_experts=8"]


def test_violation_folding_identity() -> None:
    cond = _condition("mixtral-8x7b")
    problems = shape_violations(ParallelShape(tp=4, ep=2, etp=1), cond, gpu_count=False)
    assert any("folding identity broken: etp*ep=2 but tp*attn_dp*sp=4" in p for p in problems)


def test_violation_tp_beyond_node_with_tp_within_node() -> None:
    shape = ParallelShape(tp=16)
    cond = _condition("llama-3.1-405b", num_nodes=2)
    assert shape_violations(shape, cond) == [
        "tp=16 is larger than a node of 8 GPUs (policy.tp_within_node: a TP group stays inside "
        "one node)"]
    relaxed = _condition("llama-3.1-405b", num_nodes=2, policy={"tp_within_node": False})
    assert shape_violations(shape, relaxed) == []


def test_violation_dense_model_with_expert_grid() -> None:
    problems = shape_violations(ParallelShape(tp=4, ep=2, etp=2, dp=2), _condition())
    assert problems == ["a dense model has no expert grid: ep, etp and attn_dp must be 1"]


def test_violation_pp_beyond_layers_and_sp_beyond_tokens() -> None:
    cond = _condition("llama-3.1-8b", input_tokens=2)
    problems = shape_violations(ParallelShape(pp=64, sp=4), cond, gpu_count=False)
    assert "pp=64 exceeds num_hidden_layers=32" in problems
    assert "sp=4 exceeds input_tokens=2" in problems


def test_violation_gpu_count() -> None:
    cond = _condition()
    assert shape_violations(ParallelShape(tp=8, dp=2), cond) == [
        "uses 16 GPUs but only 8 are available"]
    assert shape_violations(ParallelShape(tp=4), cond) == [
        "uses 4 of 8 GPUs (policy.use_all_gpus requires all)"]
    partial = _condition(policy={"use_all_gpus": False})
    assert shape_violations(ParallelShape(tp=4), partial) == []


def test_violation_policy_list() -> None:
    cond = _condition(policy={"tp": [2, 4]})
    assert shape_violations(ParallelShape(tp=8), cond) == ["tp=8 is not in policy.tp"]


def test_tp16_beyond_kv_heads_is_allowed_when_kv_divides_tp() -> None:
    cond = _condition(num_nodes=2, policy={"tp_within_node": False})
    assert shape_violations(ParallelShape(tp=16), cond) == []


# ---- small helpers -------------------------------------------------------------------------------


def test_divisors_and_node_groups() -> None:
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    assert divisors(1) == [1]
    assert divisors(64) == [1, 2, 4, 8, 16, 32, 64]
    assert group_within_node(8, 8) and group_within_node(4, 8) and group_within_node(1, 8)
    assert not group_within_node(16, 8)
    assert not group_within_node(3, 8)  # 3 does not tile an 8-GPU node


def test_shape_gpu_accounting() -> None:
    s = ParallelShape(tp=4, pp=2, dp=3, ep=8, etp=1, attn_dp=2, sp=1)
    assert s.gpus_per_stage == 8 == s.ep * s.etp
    assert s.gpus_per_replica == 16
    assert s.gpus_used == 48
