"""The pool search (optimize/pool_search.py) against its definition, the one-by-one lists of
optimize/pools.py: the same number of candidates, the same undominated ones with the same numbers,
the same CP-SAT choice; the grid it screens with (optimize/pool_grid.py) within GRID_RTOL of the
one-by-one numbers; the dominance helpers (optimize/dominance.py) against their plain definitions."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pytest

from solver.inputs.condition import build_condition
from solver.optimize import pool_search
from solver.optimize.disaggregated import disagg_table, solve_by_cpsat, solve_by_enumeration, undominated
from solver.optimize.dominance import first_minimal, surely_beaten
from solver.optimize.pool_grid import GRID_RTOL, PoolGrid, pool_grid
from solver.optimize.pool_search import search_pool
from solver.optimize.pools import DECODE, PREFILL, decode_candidates, pool_evaluator, prefill_candidates
from tests.corpus import generate_continuous
from tests.optimize.test_disaggregated import CASES, small_condition


def _deepseek(nodes: int, speculative: bool, redundant: int, percentile: str) -> dict[str, Any]:
    return {"name": f"ds-{nodes}", "model": "deepseek-v3",
            "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
            "hardware": {"gpu": "h800", "num_nodes": nodes, "gpus_per_node": 8},
            "workload": {"input_tokens": 4096, "output_tokens": 512, "max_batch_size": 128,
                         **({"speculative": {"draft_tokens": 2, "acceptance_rate": 0.8}}
                            if speculative else {})},
            "slo": {"ttft_ms": 2000, "tpot_ms": 40, "percentile": percentile},
            "serving": {"mode": "disaggregated", "chunk_tokens": [4096, 16384],
                        "utilization": [0.5, 0.9, 0.97]},
            "policy": {"redundant_experts": redundant}}


def _corpus() -> list[dict[str, Any]]:
    """Generated continuous-batching conditions (tiny MoE, windowed and card models, forced
    pipelines, SLO percentiles) served disaggregated, some with an e2e SLO."""
    rng = random.Random(20261201)
    out = []
    for data in generate_continuous(24)[:16]:
        d = copy.deepcopy(data)
        d["serving"] = {"mode": "disaggregated", "pools": {"whole_nodes": rng.random() < 0.5},
                        **{k: v for k, v in data["serving"].items() if k in ("utilization", "chunk_tokens")}}
        if rng.random() < 0.3:
            d.setdefault("slo", {})["e2e_latency_ms"] = rng.choice([2000, 20000])
        out.append(d)
    return out + [_deepseek(2, False, 32, "p99"), _deepseek(3, True, 0, "mean")]


CONDITIONS = _corpus()


def _same_pairing(condition: Any) -> None:
    """The searched lists against the full ones: counts, undominated candidates, CP-SAT's choice."""
    full = {PREFILL: prefill_candidates(condition), DECODE: decode_candidates(condition)}
    found = {pool: search_pool(condition, pool) for pool in full}
    whole, link = disagg_table(condition, full[PREFILL], full[DECODE])
    searched, _ = disagg_table(condition, found[PREFILL].candidates, found[DECODE].candidates)
    for pool, decode in ((PREFILL, False), (DECODE, True)):
        assert found[pool].num_candidates == len(full[pool]), pool
        assert ([found[pool].candidates[i] for i in undominated(searched, link, decode)]
                == [full[pool][i] for i in undominated(whole, link, decode)]), pool
    a, b = solve_by_cpsat(whole, link), solve_by_cpsat(searched, link)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert (whole.prefill[a.prefill], a.prefill_instances, whole.decode[a.decode], a.decode_instances,
                a.rate) == (searched.prefill[b.prefill], b.prefill_instances, searched.decode[b.decode],
                            b.decode_instances, b.rate)


@pytest.mark.parametrize("data", CONDITIONS, ids=[d["name"] for d in CONDITIONS])
def test_the_search_gives_the_full_lists_pairing(data: dict[str, Any]) -> None:
    _same_pairing(build_condition(data, "<corpus>", data["name"]))


@pytest.mark.parametrize("case", CASES[::4], ids=lambda c: "-".join(map(str, c)))
def test_the_search_finds_the_oracle_goodput(case: tuple) -> None:
    """CP-SAT over the searched candidates reaches the oracle's goodput over the full lists."""
    condition = small_condition(*case)
    _same_pairing(condition)
    full, link = disagg_table(condition, prefill_candidates(condition), decode_candidates(condition))
    searched, _ = disagg_table(condition, search_pool(condition, PREFILL).candidates,
                               search_pool(condition, DECODE).candidates)
    oracle, choice = solve_by_enumeration(full, link), solve_by_cpsat(searched, link)
    assert (oracle is None) == (choice is None)
    if oracle is not None and choice is not None:
        assert choice.goodput(searched) == oracle.goodput(full)


@pytest.mark.parametrize("data", CONDITIONS[::3], ids=[d["name"] for d in CONDITIONS[::3]])
@pytest.mark.parametrize("pool", [PREFILL, DECODE])
def test_the_grid_prices_every_operating_point_as_one_by_one(data: dict[str, Any], pool: str) -> None:
    condition = build_condition(data, "<corpus>", data["name"])
    evaluator = pool_evaluator(condition, pool)
    rows, _ = pool_search.operating_points(condition, evaluator)
    grid = pool_grid(evaluator.model, rows)
    for i in range(len(rows)):
        priced = evaluator.evaluate(rows.shape[i], rows.load(i))
        pairs = [(grid.memory_bytes[i], priced.memory_bytes)] + [
            (getattr(grid, name)[i], getattr(priced.metrics, name)) for name in pool_search.METRICS
            if pool == DECODE or not name.startswith("tpot")]
        for on_grid, exact in pairs:
            assert on_grid == pytest.approx(exact, rel=GRID_RTOL / 100, abs=0), (rows.shape[i], rows.load(i))


def _perturbed(grid: PoolGrid, rel: float, seed: int) -> PoolGrid:
    rng = np.random.default_rng(seed)
    return PoolGrid(**{name: getattr(grid, name) * (1 + rng.uniform(-rel, rel, len(grid.ttft_s)))
                       for name in PoolGrid.__dataclass_fields__})


@pytest.mark.parametrize("tolerance", [GRID_RTOL, 1e-3])
@pytest.mark.parametrize("data", [CONDITIONS[2], CONDITIONS[-2]], ids=lambda d: d["name"])
def test_grid_errors_within_the_tolerance_change_nothing(monkeypatch: pytest.MonkeyPatch,
                                                         tolerance: float, data: dict[str, Any]) -> None:
    """Screening allows for grid numbers off by up to the tolerance: with grid numbers off by a
    quarter of it (GRID_RTOL: far more than measured; 1e-3: enough to move integer keys across
    their neighbours', which catches intervals drawn too narrow) every verdict and every interval
    still gives the same count and undominated candidates."""
    condition = build_condition(data, "<test>", data["name"])
    exact = {pool: search_pool(condition, pool) for pool in (PREFILL, DECODE)}
    monkeypatch.setattr(pool_search, "GRID_RTOL", tolerance)
    monkeypatch.setattr(pool_search, "pool_grid", lambda m, r: _perturbed(pool_grid(m, r), tolerance / 4, 1))
    after = {pool: search_pool(condition, pool) for pool in (PREFILL, DECODE)}
    _, link = disagg_table(condition, [], [])
    for pool, decode in ((PREFILL, False), (DECODE, True)):
        assert after[pool].num_candidates == exact[pool].num_candidates
        lists = [disagg_table(condition, *((c, []) if pool == PREFILL else ([], c)))[0]
                 for c in (exact[pool].candidates, after[pool].candidates)]
        kept = [[(t.decode if decode else t.prefill)[i] for i in undominated(t, link, decode)] for t in lists]
        assert kept[0] == kept[1]


def test_a_grid_off_its_tolerance_falls_back_to_pricing_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    condition = small_condition("llama-3.1-8b", "h100-sxm-80gb", 2, 2, 300.0, 40.0, False, True, 1024)
    monkeypatch.setattr(pool_search, "pool_grid", lambda m, r: _perturbed(pool_grid(m, r), 1e-6, 2))
    for pool, full in ((PREFILL, prefill_candidates(condition)), (DECODE, decode_candidates(condition))):
        found = search_pool(condition, pool)
        assert found.candidates == full and found.num_candidates == len(full)


def _sequential(keys: list[list[int]], groups: list[int]) -> list[int]:
    """first_minimal's definition, as undominated() first computed it: rows in (group, key, row)
    order, each kept unless a kept row of its group matches or beats it in every column."""
    order = sorted(range(len(keys)), key=lambda i: (groups[i], keys[i], i))
    kept: list[int] = []
    front: dict[int, list[list[int]]] = {}
    for i in order:
        mine = front.setdefault(groups[i], [])
        if not any(all(a <= b for a, b in zip(other, keys[i], strict=True)) for other in mine):
            mine.append(keys[i])
            kept.append(i)
    return sorted(kept)


@pytest.mark.parametrize("seed", range(30))
def test_first_minimal_is_the_sequential_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, top = int(rng.integers(0, 1500)), int(rng.integers(1, 7))  # few values: many ties
    keys, groups = rng.integers(-top, top, size=(n, 4)), rng.integers(0, 3, n)
    assert np.flatnonzero(first_minimal(keys, groups)).tolist() == _sequential(keys.tolist(), groups.tolist())


@pytest.mark.parametrize("seed", range(30))
def test_a_surely_beaten_row_is_never_kept_whatever_the_exact_keys(seed: int) -> None:
    """surely_beaten equals its definition (some other row has hi <= lo everywhere and comes first),
    and for exact keys drawn inside the intervals no surely beaten row is first_minimal."""
    rng = np.random.default_rng(seed)
    n, top = int(rng.integers(1, 250)), int(rng.integers(1, 6))
    lo = rng.integers(-top, top, size=(n, 4))
    hi = lo + rng.integers(0, 2, size=(n, 4))
    groups = rng.integers(0, 2, n)
    beaten = surely_beaten(lo, hi, groups)
    definition = [any(j != i and groups[j] == groups[i] and (hi[j] <= lo[i]).all()
                      and (j < i or (hi[j] < lo[i]).any()) for j in range(n)) for i in range(n)]
    assert beaten.tolist() == definition
    for _ in range(5):
        exact = lo + rng.integers(0, 2, size=(n, 4)) * (hi - lo)
        assert not (first_minimal(exact, groups) & beaten).any()
