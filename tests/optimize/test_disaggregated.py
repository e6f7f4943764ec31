"""Disaggregated serving's decision: CP-SAT against the solver-free oracle on generated small
conditions, and the integer instance's rules (GPU accounting, whole-node pools, rate matching)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from solver.inputs.condition import build_condition
from solver.optimize.disaggregated import (
    disagg_table,
    pair_ok,
    solve_by_cpsat,
    solve_by_enumeration,
)
from solver.optimize.pools import decode_candidates, prefill_candidates


def small_condition(model: str, gpu: str, nodes: int, per_node: int, ttft: float | None,
                    tpot: float | None, whole: bool, use_all: bool, prompt: int) -> Any:
    data: dict[str, Any] = {
        "name": "small", "model": model,
        "hardware": {"gpu": gpu, "num_nodes": nodes, "gpus_per_node": per_node},
        "workload": {"input_tokens": prompt, "output_tokens": 128, "max_batch_size": 64},
        "slo": {k: v for k, v in (("ttft_ms", ttft), ("tpot_ms", tpot)) if v is not None},
        "serving": {"mode": "disaggregated", "chunk_tokens": [2048, 8192],
                    "utilization": [0.5, 0.9], "pools": {"whole_nodes": whole}},
        "policy": {"use_all_gpus": use_all},
    }
    return build_condition(data, "<corpus>", "small")


CASES = [
    (model, gpu, nodes, per_node, ttft, tpot, whole, use_all, prompt)
    for (model, gpu), (nodes, per_node), (ttft, tpot), whole, use_all, prompt in itertools.product(
        [("llama-3.1-8b", "l40s"), ("llama-3.1-8b", "h100-sxm-80gb")],
        [(2, 2), (3, 2), (1, 4)],
        [(None, None), (300.0, 40.0), (150.0, 25.0)],
        [True, False], [True, False], [1024, 4096])
    if not (whole and nodes == 1)  # one node cannot hold two whole-node pools
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_cpsat_equals_the_oracle(case: tuple) -> None:
    condition = small_condition(*case)
    table, link = disagg_table(condition, prefill_candidates(condition), decode_candidates(condition))
    oracle = solve_by_enumeration(table, link)
    cpsat = solve_by_cpsat(table, link)
    if oracle is None:
        assert cpsat is None
        return
    assert cpsat is not None and cpsat.status == "optimal"
    assert cpsat.goodput(table) == oracle.goodput(table)
    # the CP-SAT choice itself obeys every rule the oracle applies
    p, d = table.prefill[cpsat.prefill], table.decode[cpsat.decode]
    assert pair_ok(table, link, p, d)
    used = cpsat.gpus(table)
    assert used == table.total_gpus if table.use_all else used <= table.total_gpus
    if table.whole_nodes:
        assert cpsat.prefill_instances * p.gpus % table.gpus_per_node == 0
    assert cpsat.rate == min(cpsat.prefill_instances * table.rate(p),
                             cpsat.decode_instances * table.rate(d))


def test_one_node_has_no_whole_node_pools() -> None:
    condition = small_condition("llama-3.1-8b", "l40s", 1, 4, None, None, True, True, 1024)
    table, link = disagg_table(condition, prefill_candidates(condition), decode_candidates(condition))
    assert solve_by_enumeration(table, link) is None and solve_by_cpsat(table, link) is None
