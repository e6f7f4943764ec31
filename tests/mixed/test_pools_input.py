"""hardware.pools: the single-kind form stays valid, one pool is one kind, and mistakes name the
file, the key and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from solver.errors import InputError
from solver.inputs.condition import build_condition

BASE: dict[str, Any] = {
    "model": "llama-3.1-70b", "workload": {"input_tokens": 1024, "output_tokens": 128},
    "hardware": {"pools": [{"gpu": "h100-sxm-80gb", "num_nodes": 1},
                           {"gpu": "a100-sxm-80gb", "num_nodes": 2, "gpus_per_node": 4}]},
}


def with_hardware(**changes: Any) -> dict[str, Any]:
    return BASE | {"hardware": BASE["hardware"] | changes}


def test_two_pools_resolve_each_card() -> None:
    cond = build_condition(BASE, "f.yaml", "f")
    pools = cond.mixed.pools
    assert [p.name for p in pools] == ["h100-sxm-80gb", "a100-sxm-80gb"]
    assert [p.num_gpus for p in pools] == [8, 8]
    assert pools[1].gpus_per_node == 4
    assert cond.mixed.num_gpus == 16
    assert pools[0].condition.cluster.gpu.name != pools[1].condition.cluster.gpu.name


def test_one_pool_is_the_single_kind_condition() -> None:
    one = build_condition(with_hardware(pools=BASE["hardware"]["pools"][:1]), "f.yaml", "f")
    single = build_condition(BASE | {"hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1}}, "f.yaml", "f")
    assert one.mixed is None
    assert one.cluster == single.cluster


def test_the_same_card_twice_is_numbered() -> None:
    pools = [{"gpu": "h100-sxm-80gb", "num_nodes": 1}, {"gpu": "h100-sxm-80gb", "num_nodes": 1,
                                                        "mfu": 0.4}]
    cond = build_condition(with_hardware(pools=pools), "f.yaml", "f")
    assert [p.name for p in cond.mixed.pools] == ["h100-sxm-80gb-1", "h100-sxm-80gb-2"]


@pytest.mark.parametrize(("data", "key", "reason"), [
    (with_hardware(pools=[{"gpu": "h100-sxm-80gb"}]), "hardware.pools[0].num_nodes", "required"),
    (with_hardware(pools=[{"gpu": "nope", "num_nodes": 1}, {"gpu": "l40s", "num_nodes": 1}]),
     "hardware.pools[0].gpu", "nope"),
    (with_hardware(pools=[{"gpu": "l40s", "num_nodes": 1, "mfu": 3}]), "hardware.pools[0].mfu", "1"),
    (with_hardware(pools=[{"gpu": "l40s", "num_nodes": 1, "nodes": 2}]), "hardware.pools[0].nodes",
     "unknown key"),
    (with_hardware(pools=[]), "hardware.pools", "at least 1"),
    (with_hardware(gpu="h100-sxm-80gb"), "hardware.gpu", "not both"),
    (with_hardware(inter_pool_gb_per_s=0), "hardware.inter_pool_gb_per_s", "greater than"),
    (BASE | {"objective": {"latency_weight": 1}}, "objective", "goodput"),
    (BASE | {"serving": {"mode": "static"}, "workload": {"input_tokens": 8, "output_tokens": 8,
                                                          "batch_size": 4}},
     "serving.mode", "continuous"),
    (BASE | {"policy": {"sp": [2]}}, "policy.sp", "not planned"),
    (BASE | {"serving": {"mode": "disaggregated"}}, "serving.mode", "one GPU kind"),
])
def test_mistakes_name_file_key_and_reason(data: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(InputError) as err:
        build_condition(data, "f.yaml", "f")
    assert err.value.source == "f.yaml"
    assert err.value.key == key, str(err.value)
    assert reason in str(err.value)
