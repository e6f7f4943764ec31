#!/usr/bin/env python3
"""Start-up benchmark: wall time of short `paraplan` runs as ratios of the CP-SAT import floor.

Usage: python scripts/bench_startup.py [--rounds N] [--keep-bytecode-setting]

The floor is `python -c "from ortools.sat.python import cp_model"`: what any CP-SAT program pays
before it does anything. Each round runs the floor and every command once, in alternating order,
so machine load affects them alike; the figures are medians over the rounds, and the ratios are
median / median floor, measured in this one run (absolute times on another machine mean little).

Targets (issue 11): `--help` and input errors at most 0.3 of the floor; a bundled dense solve at
most 1.25 of it. A reference row shows what importing click, PyYAML and the condition's pydantic
models costs: the least any command that reads a condition (an input error included) can take.

Bytecode: an installed paraplan has compiled .pyc files (pip writes them), so the children run
with PYTHONDONTWRITEBYTECODE unset and a warm-up round writes __pycache__ for this checkout
(ignored by git). `--keep-bytecode-setting` keeps the caller's setting instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"help": 0.3, "error": 0.3, "solve": 1.25}


def commands(tmp: Path) -> dict[str, tuple[str, list[str], int]]:
    """name -> (target kind, argv, expected exit code)."""
    paraplan = [sys.executable, "-m", "solver.entry"]
    bad = ROOT / "tests" / "assets" / "bad" / "typo-nested.yaml"
    return {
        "floor: import cp_model": ("", [sys.executable, "-c", "from ortools.sat.python import cp_model"], 0),
        # what any command that validates a condition pays before it reads the file
        "reference: click + condition models": (
            "", [sys.executable, "-c", "import click, yaml, solver.inputs.condition"], 0),
        "paraplan --help": ("help", [*paraplan, "--help"], 0),
        "paraplan solve --help (no target)": ("", [*paraplan, "solve", "--help"], 0),
        "input error: missing file": ("error", [*paraplan, "solve", str(tmp / "missing.yaml")], 1),
        "input error: key typo": ("error", [*paraplan, "solve", str(bad)], 1),
        "input error: unknown card": ("error", [*paraplan, "solve", str(tmp / "unknown-gpu.yaml")], 1),
        "dense solve llama70b-h100x8": (
            "solve",
            [*paraplan, "solve", str(ROOT / "conditions" / "llama70b-h100x8.yaml"), "-o", str(tmp / "plan")],
            0,
        ),
    }


def run_once(argv: list[str], expected: int, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != expected:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}, expected {expected}\n{proc.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--keep-bytecode-setting", action="store_true",
                        help="do not unset PYTHONDONTWRITEBYTECODE for the children")
    args = parser.parse_args()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    if not args.keep_bytecode_setting:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "unknown-gpu.yaml").write_text(
            (ROOT / "conditions" / "llama70b-h100x8.yaml").read_text(encoding="utf-8")
            .replace("gpu: h100-sxm-80gb", "gpu: h100-sxm-800gb"), encoding="utf-8")
        cmds = commands(tmp)
        for _, argv, expected in cmds.values():  # warm-up: bytecode, file system cache
            run_once(argv, expected, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for i in range(args.rounds):
            order = list(cmds) if i % 2 == 0 else list(reversed(cmds))
            for name in order:
                _, argv, expected = cmds[name]
                times[name].append(run_once(argv, expected, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["floor: import cp_model"]
    print(f"{args.rounds} alternating rounds, medians; floor = `python -c \"from ortools.sat.python "
          f"import cp_model\"` = {floor * 1000:.0f} ms")
    print(f"{'command':<36} {'median ms':>9} {'ratio':>6} {'target':>7}")
    worst = {kind: 0.0 for kind in TARGETS}
    for name, (kind, _, _) in cmds.items():
        ratio = medians[name] / floor
        target = f"<= {TARGETS[kind]:g}" if kind else ""
        print(f"{name:<36} {medians[name] * 1000:>9.0f} {ratio:>6.2f} {target:>7}")
        if kind:
            worst[kind] = max(worst[kind], ratio)
    print(f"--help: {worst['help']:.2f} x floor (target 0.3); input errors: {worst['error']:.2f} x "
          f"(target 0.3); dense solve: {worst['solve']:.2f} x (target 1.25)")
    reference = medians["reference: click + condition models"] / floor
    print(f"(click + PyYAML + the condition's pydantic models alone: {reference:.2f} x floor; every "
          "input error pays it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
