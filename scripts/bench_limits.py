#!/usr/bin/env python3
"""Whole-run limits: does `paraplan solve --time-limit T` end within T plus start-up and writing?

Usage: python scripts/bench_limits.py [--time-limit 5] [--natural]

Runs the CLI (a fresh process, as a user would) on the cases that once ignored --time-limit:
DeepSeek-V3 on 2,048 x 8 GPUs with max_batch_size 10^6, a MoE with 10,000 experts whose SLO
sends it into the relaxations, 100,000-layer models (infeasible and feasible), and an infeasible
DeepSeek-V3 on 144 GPUs (infeasibility core + relaxations). Prints the wall time of each run, the
start-up floor (`import solver.cli` in a fresh interpreter) and the stages the deadline cut.
With --natural it also runs each case with a 10-minute limit, to show what the deadline saves.
Timings belong here, never in tests (tests/test_limits.py asserts what was cut, not how fast).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEEPSEEK = yaml.safe_load((ROOT / "conditions" / "deepseek-v3-h800x144.yaml").read_text())


def _deepseek(**changes: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(DEEPSEEK))
    for key, value in changes.items():
        section, name = key.split("__")
        data[section][name] = value
    return data


def _deep(layers: int, hidden: int) -> dict:
    return {"model": {"name": f"deep-{layers}", "num_hidden_layers": layers, "hidden_size": hidden,
                      "num_attention_heads": 8, "num_key_value_heads": 4,
                      "intermediate_size": 4 * hidden, "vocab_size": 32000},
            "precision": {"weights": "bf16", "kv_cache": "bf16", "activations": "bf16"},
            "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 4, "gpus_per_node": 8},
            "workload": {"input_tokens": 1024, "output_tokens": 256, "max_batch_size": 64}}


CASES: dict[str, dict] = {
    "deepseek-v3-2048x8-batch-1e6": _deepseek(hardware__num_nodes=2048,
                                              workload__max_batch_size=1_000_000),
    "moe-10000-experts-infeasible": {
        "model": {"name": "moe-10k", "num_hidden_layers": 8, "hidden_size": 2048,
                  "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 8192,
                  "vocab_size": 32000, "num_experts": 10_000, "num_experts_per_tok": 8,
                  "moe_intermediate_size": 512},
        "precision": {"weights": "bf16", "kv_cache": "bf16", "activations": "bf16"},
        "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 2, "gpus_per_node": 8},
        "workload": {"input_tokens": 2048, "output_tokens": 256, "max_batch_size": 64,
                     "expert_load": {"distribution": "zipf", "alpha": 1.0}},
        "slo": {"tpot_ms": 0.01}},
    "layers-100000-infeasible": _deep(100_000, 1024),
    "layers-100000-feasible": _deep(100_000, 256),
    "deepseek-v3-144-infeasible": _deepseek(slo__tpot_ms=0.5),
}


def start_up_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import solver.cli"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def run(name: str, data: dict, limit: float, folder: Path) -> tuple[float, int, str]:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **data}, sort_keys=False))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "solver.entry", "solve", str(path), "-o",
                           str(folder / name), "--time-limit", f"{limit:g}"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    cut = next((line.strip() for line in done.stderr.splitlines() if "time limit reached" in line),
               "")
    cut = cut.split(" in: ")[1].split(";")[0] if " in: " in cut else "-"
    return seconds, done.returncode, cut


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--natural", action="store_true", help="also run with a 600 s limit")
    args = parser.parse_args()
    floor = start_up_s()
    print(f"start-up (import solver.cli in a fresh interpreter): {floor:.2f} s")
    print(f"{'case':32s} {'limit s':>8s} {'wall s':>8s} {'over s':>7s} {'exit':>4s}  cut by the deadline")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CASES.items():
            limits = [args.time_limit] + ([600.0] if args.natural else [])
            for limit in limits:
                seconds, code, cut = run(name, data, limit, Path(tmp))
                over = seconds - limit - floor
                if limit == args.time_limit:
                    worst = max(worst, over)
                print(f"{name:32s} {limit:8g} {seconds:8.2f} {over:7.2f} {code:4d}  {cut}", flush=True)
    print(f"\nworst time beyond --time-limit {args.time_limit:g} s plus start-up: {worst:.2f} s "
          "(writing the plan folder; 16,384 devices take about a second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
