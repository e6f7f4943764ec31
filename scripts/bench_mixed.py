#!/usr/bin/env python3
"""Mixed-cluster solve benchmark (issue 16): the 4-pool, 64-GPU condition, and every bundled mixed
condition, measured in one run.

Usage: python scripts/bench_mixed.py [PATHS...] [--repeat N]
Per condition: templates, templates settled, replica models solved, wall and CPU seconds of
building (grids and bounds) and of the optimum, then the comparison solves (each pool alone, the
proportional heuristic); the plan's tokens/s against the best single pool and the heuristic as
ratios. Target: the 4-pool, 64-GPU condition within 10 s on 2 cores (issue 16). Nothing here is
asserted; tests never assert time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solver.inputs.condition import load_condition  # noqa: E402
from solver.optimize.mixed_search import best_counts, build_mixed_problem, settle_optimal  # noqa: E402
from solver.optimize.mixed_tables import VALUE_PER_TOKEN_S  # noqa: E402
from solver.planning.mixed_planner import compare  # noqa: E402

BENCH = ROOT / "conditions" / "mixed" / "llama70b-4pools-x64.yaml"


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def measure(path: Path) -> None:
    cond = load_condition(path)
    w0, c0 = clocks()
    problem = build_mixed_problem(cond.mixed)
    w1, c1 = clocks()
    result = best_counts(problem, "optimal", settle_optimal)
    w2, c2 = clocks()
    baselines = compare(problem, result, None)
    w3, c3 = clocks()
    tokens = result.value / VALUE_PER_TOKEN_S
    best = baselines.best_single_pool_tokens_per_s
    heuristic = baselines.proportional_tokens_per_s
    print(f"{path.stem}: {cond.mixed.num_gpus} GPUs in {len(cond.mixed.pools)} pools, "
          f"{len(problem.templates)} templates, {result.settled} settled, {problem.solves} replica "
          f"models, status {result.status}")
    print(f"  build {w1 - w0:.2f} s wall ({c1 - c0:.2f} s CPU), optimum {w2 - w1:.2f} s "
          f"({c2 - c1:.2f} s CPU), total {w2 - w0:.2f} s; baselines {w3 - w2:.2f} s")
    print(f"  {tokens:,.1f} tokens/s; best single pool ({baselines.best_single_pool}) {best:,.1f} "
          f"(mixed / single {tokens / best if best else float('inf'):.3f}); proportional split "
          f"{heuristic:,.1f} (mixed / heuristic {tokens / heuristic if heuristic else float('inf'):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    paths = args.paths or [BENCH, *sorted(p for p in (ROOT / "conditions" / "mixed").glob("*.yaml")
                                          if p != BENCH)]
    for path in paths:
        for _ in range(args.repeat):
            measure(path)


if __name__ == "__main__":
    main()
