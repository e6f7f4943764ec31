"""Atomic outputs, interruption, and a huge condition under a time limit (issue 7)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from solver.condition import build_condition
from solver.formulation import SolverSettings
from solver.planner import solve
from solver.verify import violations
from solver.writer import write_outputs

ROOT = Path(__file__).resolve().parent.parent


def test_rerun_replaces_plan_files_and_keeps_unrelated_files(tmp_path):
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "plan.md": "old\n"})
    (out / "notes.txt").write_text("mine")
    write_outputs(out, {"plan.json": '{"new": 1}\n'})
    assert (out / "plan.json").read_text() == '{"new": 1}\n'
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failure_while_writing_leaves_the_previous_folder_intact(tmp_path, monkeypatch):
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "old\n", "plan.md": "old\n"})
    original = Path.write_text
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(out, {"plan.json": "new\n", "plan.md": "new\n"})
    monkeypatch.undo()
    assert (out / "plan.json").read_text() == "old\n"
    assert (out / "plan.md").read_text() == "old\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


HUGE = {
    "name": "huge",
    "model": {"name": "huge-moe", "num_hidden_layers": 128, "hidden_size": 8192,
              "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128000,
              "num_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
              "num_shared_experts": 1},
    "precision": {"weights": "fp8", "kv_cache": "fp8", "activations": "fp8"},
    "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 512, "gpus_per_node": 8},
    "workload": {"input_tokens": 4096, "output_tokens": 1024, "max_batch_size": 4096},
    "slo": {"tpot_ms": 100},
}


@pytest.mark.parametrize("entry", [["-m", "solver.entry"], ["-m", "solver.cli"]])
def test_sigint_leaves_no_output(tmp_path, entry):
    """Interrupt a long solve once it has started: exit 130, no output folder, no staging left."""
    condition = tmp_path / "huge.json"
    condition.write_text(json.dumps(HUGE))
    out = tmp_path / "plan"
    proc = subprocess.Popen([sys.executable, *entry, "solve", str(condition), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "solving huge ..." once imports are done and work begins
    assert first.startswith("solving"), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, first + stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sigint_during_start_up_is_quiet(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "solver.entry", "schema"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130, -2), stderr  # -2: killed before Python could react
    assert "Traceback" not in stderr


def test_huge_condition_returns_a_verified_plan_within_its_limit():
    """4,096 GPUs, 256 experts, 128 layers: a verified plan (optimal or feasible with its gap)."""
    solution = solve(build_condition(HUGE, "huge", "huge"), settings=SolverSettings(time_limit_s=20))
    plan = solution.plan
    assert plan.status in ("optimal", "feasible")
    assert plan.gpus.used == plan.gpus.model_parts == 4096 == len(plan.devices)
    assert not violations(solution.checks)


def test_new_run_drops_stale_outputs_of_an_earlier_run(tmp_path):
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "plan.md": "old\n", "balance.csv": "x\n"})
    write_outputs(out, {"infeasibility.md": "no plan\n"})
    assert sorted(p.name for p in out.iterdir()) == ["infeasibility.md", "manifest.json"]
