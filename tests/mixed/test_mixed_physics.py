"""Mixed clusters, physics by hand: the single-pool template is the single-kind model, the
inter-pool transfer is bytes / link + alpha, each stage uses its own card, and the replica value."""

from __future__ import annotations

from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.optimize.mixed_tables import replica_value
from solver.physics.continuous import ContinuousLoad
from solver.physics.evaluate import evaluate_plan
from solver.physics.mixed import MixedCostModel, StageOption, Template, evaluate_replica
from solver.physics.shapes import ParallelShape


def two_pools(**hardware: Any) -> dict[str, Any]:
    return {
        "name": "two", "model": "llama-3.1-70b",
        "precision": {"weights": "fp8", "kv_cache": "fp8"},
        "hardware": {"pools": [{"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 8},
                               {"gpu": "a100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 8}],
                     **hardware},
        "workload": {"input_tokens": 2048, "output_tokens": 512},
        "slo": {"ttft_ms": 2000, "tpot_ms": 50},
    }


LOAD = ContinuousLoad(32, 0.8, 8192)


@pytest.mark.parametrize("pool", [0, 1])
def test_a_template_on_one_pool_costs_what_the_single_kind_model_costs(pool: int) -> None:
    cond = build_condition(two_pools(), "<t>", "two")
    single = cond.mixed.pools[pool].condition
    split = [0, 30, 80]
    _, stages, metrics = evaluate_plan(single, ParallelShape(tp=4, pp=2), LOAD, split)
    template = Template((StageOption(pool, 4),) * 2)
    _, mixed_stages, replica = evaluate_replica(MixedCostModel(cond.mixed), template, LOAD, split)
    for a, b in zip(stages, mixed_stages, strict=True):
        assert a.step_s == pytest.approx(b.step_s, rel=1e-12)
        assert a.memory_bytes == pytest.approx(b.memory_bytes, rel=1e-12)
        assert b.usable_bytes == single.cluster.usable_memory_bytes
    assert replica.ttft_s == pytest.approx(metrics.ttft_s, rel=1e-12)
    assert replica.tpot_s == pytest.approx(metrics.tpot_s, rel=1e-12)
    assert replica.throughput_tokens_per_s == pytest.approx(metrics.throughput_tokens_per_s, rel=1e-12)


def test_the_transfer_between_pools_takes_the_inter_pool_link() -> None:
    cond = build_condition(two_pools(inter_pool_gb_per_s=10), "<t>", "two")
    mixed = MixedCostModel(cond.mixed)
    template = Template((StageOption(0, 4), StageOption(1, 4)))
    costs = mixed.stage_costs(template, LOAD)
    for step in ("mix", "chunk"):
        size = costs[0].transfer.steps[step].comm_bytes
        # hidden states of the step's tokens: (decodes + prompt tokens) x 8192 x 2 bytes
        mix = costs[0].point.mixes[step]
        assert size == pytest.approx((mix.decode_seqs + mix.prefill_tokens) * 8192 * 2)
        alpha = cond.mixed.pools[0].condition.cluster.collective_latency_s
        assert mixed.transfer(template, 0, costs[0], step).time_s == pytest.approx(size / 10e9 + alpha)
        assert mixed.transfer(template, 1, costs[1], step).time_s == 0  # after the last stage


def test_the_default_inter_pool_link_is_the_smallest_network() -> None:
    cond = build_condition(two_pools(), "<t>", "two")
    smallest = min(p.condition.cluster.inter_node_bytes_per_s for p in cond.mixed.pools)
    assert cond.mixed.inter_pool_bytes_per_s == smallest


def test_each_stage_is_timed_and_sized_on_its_own_card() -> None:
    cond = build_condition(two_pools(), "<t>", "two")
    mixed = MixedCostModel(cond.mixed)
    template = Template((StageOption(0, 4), StageOption(1, 4)))
    _, stages, _ = evaluate_replica(mixed, template, LOAD, [0, 40, 80])
    h100, a100 = (mixed.models[i].candidate(ParallelShape(tp=4, pp=2), LOAD) for i in (0, 1))
    kind = h100.kinds[0]
    # 40 identical layers each; stage 0 adds the embedding and the transfer, stage 1 the head
    assert stages[0].step_s["mix"] == pytest.approx(
        40 * h100.layer[kind].steps["mix"].time_s + h100.first_stage.steps["mix"].time_s
        + mixed.transfer(template, 0, h100, "mix").time_s)
    assert stages[1].step_s["mix"] == pytest.approx(
        40 * a100.layer[kind].steps["mix"].time_s + a100.last_stage.steps["mix"].time_s)
    assert stages[0].step_s["mix"] < stages[1].step_s["mix"]  # the H100 is faster
    assert stages[1].weights_bytes == pytest.approx(40 * a100.layer[kind].weight_bytes
                                                    + a100.last_stage.weight_bytes)


def test_template_accounting_and_labels() -> None:
    template = Template((StageOption(1, 2),) * 2 + (StageOption(0, 8),))
    assert template.usage(3) == (8, 4, 0)
    assert template.pools == (1, 0)
    assert [template.crosses_pools(s) for s in range(3)] == [False, True, False]
    assert template.run_gpus(0) == 4 and template.run_gpus(2) == 8
    assert template.label(["H100", "A100", "L40S"]) == "A100 TP2 x2 -> H100 TP8"


def test_replica_value_by_hand() -> None:
    # c = 2 s per token per s of round, R = 50 ms: 1 / (2 x 0.05) = 10 tokens/s = 10,000 milli
    assert replica_value(2.0, 50_000_000) == 10_000
    assert replica_value(3.0, 1_000_000_000) == 333  # floor(1000 / 3)


def test_a_drafting_mtp_module_holds_the_same_memory_as_in_the_single_kind_model() -> None:
    """MTP speculation: the module's weights and its own KV cache sit on the last stage, in a mixed
    template on one pool as in the single-kind model (the KV counted as KV cache)."""
    data = {**two_pools(), "model": "deepseek-v3",
            "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
            "workload": {"input_tokens": 2048, "output_tokens": 512,
                         "speculative": {"draft_tokens": 1, "acceptance_rate": 0.85}}}
    for pool in data["hardware"]["pools"]:
        pool["num_nodes"] = 2
    cond = build_condition(data, "<t>", "two")
    single = cond.mixed.pools[0].condition
    split = [0, 30, 61]
    _, stages, _ = evaluate_plan(single, ParallelShape(tp=8, pp=2), LOAD, split)
    template = Template((StageOption(0, 8),) * 2)
    _, mixed_stages, _ = evaluate_replica(MixedCostModel(cond.mixed), template, LOAD, split)
    for a, b in zip(stages, mixed_stages, strict=True):
        assert a.memory_bytes == pytest.approx(b.memory_bytes, rel=1e-12)
        assert a.kv_cache_bytes == pytest.approx(b.kv_cache_bytes, rel=1e-12)
    # the last stage: its 31 layers and the MTP module's, as much KV per layer as the first's 30
    assert mixed_stages[1].kv_cache_bytes / 32 == pytest.approx(mixed_stages[0].kv_cache_bytes / 30)
