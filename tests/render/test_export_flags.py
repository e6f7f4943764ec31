"""Exported launch scripts run as written (issue 15): every node of a multi-node plan runs its own
command with the engine's multi-node flags, and every flag is one the engine's argument parser
defines (tests/assets/engine_args/, copied from the engines' sources with the commits read).

Each script is run by bash once per node with NODE_RANK and NODE_ADDR_<n> set and the engines
replaced by stubs that record their arguments, so the test sees exactly what a node would run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from solver.inputs.condition import build_condition, load_condition
from solver.render.export import render_launch
from solver.review.check import ShortPlan, check_given
from tests.paths import REPO

ARGS = REPO / "tests" / "assets" / "engine_args"
PROGRAMS = ("vllm", "python", "trtllm-serve", "mpirun", "trtllm-llmapi-launch", "ray")
SCRIPTS = {"vllm": "launch/vllm.sh", "sglang": "launch/sglang.sh", "trtllm": "launch/trtllm.sh"}
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _recorded() -> dict[str, set[str]]:
    flags: dict[str, set[str]] = {}
    for path in ARGS.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert data["version"] and data["sources"], path
        for command, names in data["commands"].items():
            flags[command] = set(names or [])
    return flags


def _condition(model: str, gpu: str, nodes: int, per_node: int = 8):
    return build_condition({"model": model, "hardware": {"gpu": gpu, "num_nodes": nodes,
                                                         "gpus_per_node": per_node},
                            "workload": {"input_tokens": 2048, "output_tokens": 256,
                                         "batch_size": 32}}, "c.yaml", "c")


PLANS = {
    "llama70b TP8 DP2, 2 nodes": ("llama-3.1-70b", "h100-sxm-80gb", 2, {"tp": 8, "dp": 2}),
    "llama70b TP8 PP2, 2 nodes": ("llama-3.1-70b", "h100-sxm-80gb", 2, {"tp": 8, "pp": 2}),
    "llama70b TP4 DP4, 2 nodes": ("llama-3.1-70b", "h100-sxm-80gb", 2, {"tp": 4, "dp": 4}),
    "llama405b TP8 PP2 DP2, 4 nodes": ("llama-3.1-405b", "h100-sxm-80gb", 4, {"tp": 8, "pp": 2, "dp": 2}),
    "deepseek ADP16 EP16, 2 nodes": ("deepseek-v3", "h200-sxm-141gb", 2, {"attn_dp": 16, "ep": 16}),
    "qwen3 ADP8 EP8 PP2, 2 nodes": ("qwen3-235b-a22b", "h200-sxm-141gb", 2,
                                    {"attn_dp": 8, "ep": 8, "pp": 2}),
    "mixtral ADP4 EP4 DP4, 2 nodes": ("mixtral-8x7b", "h100-sxm-80gb", 2, {"attn_dp": 4, "ep": 4, "dp": 4}),
}


def _stubs(folder: Path, log: Path) -> dict[str, str]:
    """Programs that write their name and arguments (one per line) to a file of their own in the
    folder `log` (servers started in the background run at the same time)."""
    folder.mkdir()
    log.mkdir()
    for name in PROGRAMS:
        stub = folder / name
        stub.write_text('#!/usr/bin/env bash\n'
                        f'{{ echo "{name}"; printf "%s\\n" "$@"; }} > "$(mktemp -p "{log}")"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _run_node(script: Path, node: int, nodes: list[int], tmp: Path) -> list[list[str]]:
    """The commands (argument vectors) one node's run of the script starts."""
    log = tmp / f"log-{script.stem}-{node}"
    env = dict(os.environ) | _stubs(tmp / f"bin-{script.stem}-{node}", log)
    env |= {"NODE_RANK": str(node)} | {f"NODE_ADDR_{n}": f"10.0.0.{n + 1}" for n in nodes}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return sorted(path.read_text().splitlines() for path in log.iterdir())


def _segments(argv: list[str]) -> list[tuple[str, list[str]]]:
    """(program, its flags) of every program in one command line (mpirun ... trtllm-serve ...)."""
    out: list[tuple[str, list[str]]] = []
    if argv[:3] == ["python", "-m", "sglang.launch_server"]:
        argv = ["python", *argv[3:]]
    for word in argv:
        program = {"vllm": "vllm serve", "python": "python -m sglang.launch_server",
                   "ray": "ray start"}.get(word, word)
        if word in PROGRAMS:
            out.append((program, []))
        elif word.startswith("-") and not word.lstrip("-").isdigit():
            out[-1][1].append(word.split("=", 1)[0])
    return out


@pytest.fixture(scope="module")
def recorded() -> dict[str, set[str]]:
    return _recorded()


@pytest.mark.parametrize("name", list(PLANS))
def test_every_node_runs_its_command_with_flags_the_engine_defines(name: str, recorded, tmp_path) -> None:
    model, gpu, num_nodes, degrees = PLANS[name]
    condition = _condition(model, gpu, num_nodes)
    plan = check_given(condition, ShortPlan(batch_size=32, **degrees)).plan
    nodes = sorted({d.node for d in plan.devices})
    assert len(nodes) > 1
    files = render_launch(condition, plan)
    for engine, path in SCRIPTS.items():
        script = tmp_path / path.split("/")[1]
        script.write_text(files[path])
        if engine == "trtllm":
            (tmp_path / "trtllm.yaml").write_text(files["launch/trtllm.yaml"])
        started = {node: _run_node(script, node, nodes, tmp_path) for node in nodes}
        for node, commands in started.items():
            for argv in commands:
                for program, flags in _segments(argv):
                    unknown = [f for f in flags if f not in recorded[program]]
                    assert not unknown, f"{name}, {path}, node {node}: {program} has no {unknown}"
        _assert_each_node_is_served(engine, started, nodes, name)


def _assert_each_node_is_served(engine: str, started: dict[int, list[list[str]]], nodes: list[int],
                                name: str) -> None:
    """vLLM and SGLang: one command (or more) on every node; TensorRT-LLM: a node without its own
    trtllm-serve is a host of an mpirun started on another node."""
    mpi_hosts = {host.split(":")[0] for commands in started.values() for argv in commands
                 if argv[0] == "mpirun" for host in argv[argv.index("-H") + 1].split(",")}
    for node in nodes:
        if started[node]:
            continue
        assert engine == "trtllm" and f"10.0.0.{node + 1}" in mpi_hosts, f"{name}: {engine} node {node}"


def test_the_multi_node_flags_are_the_ones_each_engine_documents(tmp_path) -> None:
    """TP8 x DP2 over two nodes (the issue's example: one `vllm serve --data-parallel-size 2` line
    with no node addressing): node 1 runs a headless vLLM from data-parallel rank 1; a TP8 x PP2
    replica: SGLang --nnodes/--node-rank/--dist-init-addr on both nodes, TRT-LLM one mpirun."""
    condition = _condition("llama-3.1-70b", "h100-sxm-80gb", 2)
    dp2 = render_launch(condition, check_given(condition, ShortPlan(tp=8, dp=2, batch_size=32)).plan)
    script = tmp_path / "vllm.sh"
    script.write_text(dp2["launch/vllm.sh"])
    head, second = (_run_node(script, n, [0, 1], tmp_path)[0] for n in (0, 1))
    assert "--headless" in second and second[second.index("--data-parallel-start-rank") + 1] == "1"
    assert head[head.index("--data-parallel-address") + 1] == "10.0.0.1" and "--headless" not in head
    pp2 = render_launch(condition, check_given(condition, ShortPlan(tp=8, pp=2, batch_size=32)).plan)
    (tmp_path / "sglang.sh").write_text(pp2["launch/sglang.sh"])
    for node in (0, 1):
        argv = _run_node(tmp_path / "sglang.sh", node, [0, 1], tmp_path)[0]
        assert argv[argv.index("--node-rank") + 1] == str(node)
        assert argv[argv.index("--dist-init-addr") + 1] == "10.0.0.1:50000"
    (tmp_path / "trtllm.sh").write_text(pp2["launch/trtllm.sh"])
    (tmp_path / "trtllm.yaml").write_text(pp2["launch/trtllm.yaml"])
    mpi = _run_node(tmp_path / "trtllm.sh", 0, [0, 1], tmp_path)[0]
    assert mpi[:5] == ["mpirun", "-np", "16", "-H", "10.0.0.1:8,10.0.0.2:8"]
    assert _run_node(tmp_path / "trtllm.sh", 1, [0, 1], tmp_path) == []


def test_a_script_without_node_rank_says_what_to_set(tmp_path) -> None:
    condition = _condition("llama-3.1-70b", "h100-sxm-80gb", 2)
    files = render_launch(condition, check_given(condition, ShortPlan(tp=8, dp=2, batch_size=32)).plan)
    script = tmp_path / "vllm.sh"
    script.write_text(files["launch/vllm.sh"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NODE_RANK", "NODE_ADDR"))}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "set NODE_RANK" in run.stderr


def test_single_node_plans_keep_one_command_with_known_flags(recorded, tmp_path) -> None:
    condition = load_condition(REPO / "conditions" / "llama70b-h100x8.yaml")
    files = render_launch(condition, check_given(condition, ShortPlan(tp=4, dp=2, batch_size=16)).plan)
    for engine, path in SCRIPTS.items():
        script = tmp_path / path.split("/")[1]
        script.write_text(files[path])
        (tmp_path / "trtllm.yaml").write_text(files["launch/trtllm.yaml"])
        commands = _run_node(script, 0, [0], tmp_path)
        assert commands, engine
        for argv in commands:
            for program, flags in _segments(argv):
                assert set(flags) <= recorded[program], (engine, set(flags) - recorded[program])
