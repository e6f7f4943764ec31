#!/usr/bin/env python3
"""Disaggregated serving's pool candidates: the search (optimize/pool_search.py) against pricing
every operating point one by one (optimize/pools.py), in one run.

Usage: python scripts/bench_pools.py [CONDITIONS...] [--no-full] [--solve]

For each condition (default: the published DeepSeek-V3 disaggregated deployment on 176 H800, the
bundled auto condition and the two DeepSeek-V3 auto cases of tests/planning/test_architectures.py)
and each pool: operating points, candidates (those that fit and meet their own SLO part), one-by-one
evaluations and CPU seconds of both ways, and their ratios; then whether both give the same
undominated candidates (what CP-SAT sees). --no-full skips the one-by-one way (minutes on DeepSeek);
--solve also times the whole `plan_serving` of each condition (CPU and wall seconds).
Timings belong here, never in tests (tests/optimize/test_pool_search.py asserts the answers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solver.inputs.condition import Condition, build_condition, load_condition  # noqa: E402
from solver.optimize import pools  # noqa: E402
from solver.optimize.disaggregated import disagg_table, undominated  # noqa: E402
from solver.optimize.pool_search import PoolSearch, search_pool  # noqa: E402

DEFAULT = [ROOT / "conditions" / "published" / "deepseek-v3-disagg-h800x176.yaml",
           ROOT / "conditions" / "llama8b-h100x8-auto.yaml"]


def _deepseek_auto(nodes: int, prompt: int, output: int, tpot_ms: float) -> Condition:
    """tests/planning/test_architectures.py's DeepSeek-V3 auto cases."""
    data: dict[str, Any] = {"name": f"deepseek-v3-{nodes}n-auto", "model": "deepseek-v3",
            "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
            "hardware": {"gpu": "h800", "num_nodes": nodes, "gpus_per_node": 8},
            "workload": {"input_tokens": prompt, "output_tokens": output, "max_batch_size": 256},
            "slo": {"ttft_ms": 2000, "tpot_ms": tpot_ms},
            "serving": {"mode": "auto", "chunk_tokens": [4096, 16384], "utilization": [0.5, 0.8, 0.9]}}
    return build_condition(data, "<bench>", f"deepseek-v3-{nodes}n-auto")


def _counting(call: Callable[[], Any]) -> tuple[Any, int, float]:
    """call(), the one-by-one evaluations it made and its CPU seconds."""
    count = 0
    evaluate = pools.PoolEvaluator.evaluate

    def counted(self: pools.PoolEvaluator, *args: Any) -> Any:
        nonlocal count
        count += 1
        return evaluate(self, *args)

    pools.PoolEvaluator.evaluate = counted  # type: ignore[method-assign,assignment]
    try:
        started = time.process_time()
        result = call()
        return result, count, time.process_time() - started
    finally:
        pools.PoolEvaluator.evaluate = evaluate  # type: ignore[method-assign]


def bench(condition: Condition, full: bool) -> None:
    print(f"{condition.name}")
    found: dict[str, PoolSearch] = {}
    lists: dict[str, list[pools.PoolCandidate]] = {}
    for pool in (pools.PREFILL, pools.DECODE):
        found[pool], priced, cpu = _counting(partial(search_pool, condition, pool))
        line = (f"  {pool:7s} {found[pool].num_operating_points:7,d} operating points, "
                f"{found[pool].num_candidates:7,d} candidates; search: {priced:6,d} one by one, "
                f"{cpu:6.1f} s CPU")
        if full:
            every = pools.prefill_candidates if pool == pools.PREFILL else pools.decode_candidates
            lists[pool], count, full_cpu = _counting(partial(every, condition))
            line += (f"; one by one: {count:7,d}, {full_cpu:6.1f} s CPU; ratio "
                     f"{count / max(priced, 1):5.1f}x evaluations, {full_cpu / max(cpu, 1e-9):5.1f}x CPU")
        print(line, flush=True)
    if full:
        _same_undominated(condition, found, lists)


def _same_undominated(condition: Condition, found: dict[str, Any], lists: dict[str, Any]) -> None:
    searched, link = disagg_table(condition, found[pools.PREFILL].candidates, found[pools.DECODE].candidates)
    whole, _ = disagg_table(condition, lists[pools.PREFILL], lists[pools.DECODE])
    for pool, decode in ((pools.PREFILL, False), (pools.DECODE, True)):
        started = time.process_time()
        a, b = ([(t.decode if decode else t.prefill)[i] for i in undominated(t, link, decode)]
                for t in (whole, searched))
        print(f"  {pool:7s} undominated: {len(a):,d} of the full list ({time.process_time() - started:.1f} s "
              f"CPU for both), {'the same' if a == b else 'DIFFERENT'} from the search's")


def solve_times(condition: Condition) -> None:
    from solver.optimize.settings import SolverSettings
    from solver.planning.modes import plan_serving

    wall, cpu = time.perf_counter(), time.process_time()
    plan_serving(condition, settings=SolverSettings(time_limit_s=3600), with_runner_ups=True)
    print(f"  plan_serving: {time.process_time() - cpu:.1f} s CPU, {time.perf_counter() - wall:.1f} s wall")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("conditions", nargs="*", type=Path)
    parser.add_argument("--no-full", action="store_true", help="skip pricing every operating point")
    parser.add_argument("--solve", action="store_true", help="also time plan_serving")
    args = parser.parse_args()
    conditions = ([load_condition(p) for p in args.conditions] if args.conditions else
                  [load_condition(p) for p in DEFAULT] + [_deepseek_auto(4, 4096, 1024, 50),
                                                          _deepseek_auto(8, 8192, 512, 30)])
    for condition in conditions:
        bench(condition, not args.no_full)
        if args.solve:
            solve_times(condition)
    return 0


if __name__ == "__main__":
    sys.exit(main())
