#!/usr/bin/env python3
"""Solve-time benchmark over condition files: in-process and through the CLI.

Usage: python scripts/bench_solve.py [PATHS...] [--repeat N] [--no-cli]
Prints one row per condition and the median / worst figures (targets: median < 1 s, worst < 5 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solver.condition import load_condition  # noqa: E402
from solver.errors import InfeasibleError  # noqa: E402
from solver.planner import solve  # noqa: E402
from solver.report import render_all  # noqa: E402


def in_process(path: Path, repeat: int) -> tuple[float, str]:
    best = float("inf")
    outcome = ""
    for _ in range(repeat):
        start = time.perf_counter()
        condition = load_condition(path)
        try:
            solution = solve(condition)
            render_all(condition, solution.plan, solution.checks, solution.problem)
            outcome = (f"{solution.plan.status} {solution.plan.parallelism.shape().label} "
                       f"B={solution.plan.batch_size} cand={solution.plan.solver.candidates}")
        except InfeasibleError:
            outcome = "infeasible"
        best = min(best, time.perf_counter() - start)
    return best, outcome


def via_cli(path: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "solver.cli", "solve", str(path), "-o", tmp],
                       capture_output=True, check=False, cwd=ROOT)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "conditions"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args()
    files: list[Path] = []
    for p in args.paths:
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    rows = []
    print(f"{'condition':40s} {'in-process s':>12s} {'CLI s':>8s}  outcome")
    for path in files:
        seconds, outcome = in_process(path, args.repeat)
        cli = float("nan") if args.no_cli else via_cli(path)
        group = "deepseek-class" if load_condition(path).model.is_mla else "dense/standard-moe"
        rows.append((seconds, cli, group))
        print(f"{path.stem:40s} {seconds:12.3f} {cli:8.3f}  {outcome}", flush=True)
    targets = {"dense/standard-moe": (1.0, 5.0), "deepseek-class": (2.0, 10.0)}
    print()
    for group, (median_target, worst_target) in targets.items():
        chosen = [r for r in rows if r[2] == group]
        if not chosen:
            continue
        inproc = [r[0] for r in chosen]
        line = (f"{group}: {len(chosen)} conditions; in-process median {statistics.median(inproc):.3f} s, "
                f"worst {max(inproc):.3f} s")
        if not args.no_cli:
            cli = [r[1] for r in chosen]
            line += f"; CLI median {statistics.median(cli):.3f} s, worst {max(cli):.3f} s"
        print(line + f" (targets: median < {median_target:g} s, worst < {worst_target:g} s)")
    inproc = [r[0] for r in rows]
    print(f"all: median {statistics.median(inproc):.3f} s, worst {max(inproc):.3f} s in-process; "
          "CLI figures include interpreter start-up and imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
