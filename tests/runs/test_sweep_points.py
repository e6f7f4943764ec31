"""Sweep points: --set parsing into typed values, keys checked against the condition schema,
sections created by dotted keys, short unique names."""

from __future__ import annotations

import pytest

from solver.errors import InputError
from solver.runs.sweep_points import apply, check_key, parse_set, short_keys, split_values


def test_values_get_natural_types() -> None:
    axis = parse_set("slo.tpot_ms=20,50.5,null")
    assert axis.values == (20, 50.5, None) and axis.texts == ("20", "50.5", "null")
    assert parse_set("precision.weights=fp8,bf16").values == ("fp8", "bf16")
    assert parse_set("policy.tp=[2,4],[8]").values == ([2, 4], [8])
    assert parse_set("policy.use_all_gpus=true,false").values == (True, False)


def test_split_values_respects_brackets_and_quotes() -> None:
    assert split_values("[1,2],{a: 1, b: 2},'x,y',3") == ["[1,2]", "{a: 1, b: 2}", "'x,y'", "3"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hardware.num_nodez=1,2", "did you mean 'hardware.num_nodes'"),
        ("slo.tpot=20", "did you mean 'slo.tpot_ms'"),
        ("nonsense=1", "unknown key"),
        ("slo.tpot_ms.value=1", "holds a value"),
        ("hardware.num_nodes", "KEY=V1,V2"),
        ("hardware.num_nodes=1,,2", "empty value"),
        ("hardware.num_nodes=1,1", "repeated"),
        ("=1", "dotted key"),
    ],
)
def test_bad_set_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_set(spec)


def test_keys_inside_inline_cards_are_known() -> None:
    check_key("model.num_hidden_layers")  # model may be an inline card
    check_key("hardware.gpu.memory_gb")
    check_key("workload.expert_load.alpha")


def test_apply_creates_sections_and_null_removes() -> None:
    data = {"hardware": {"num_nodes": 1}}
    apply(data, "slo.tpot_ms", 20)
    apply(data, "hardware.num_nodes", None)
    assert data == {"hardware": {}, "slo": {"tpot_ms": 20}}
    with pytest.raises(InputError, match="not a mapping"):
        apply({"model": "llama-3.1-8b"}, "model.num_hidden_layers", 4)


def test_short_keys_are_unique_suffixes() -> None:
    assert short_keys(["hardware.num_nodes", "slo.tpot_ms", "policy.tp", "a.tp"]) == {
        "hardware.num_nodes": "num_nodes",
        "slo.tpot_ms": "tpot_ms",
        "policy.tp": "policy.tp",
        "a.tp": "a.tp",
    }
