"""Exported launch scripts run as written (issue 15): every node of a multi-node plan runs its own
command with the engine's multi-node flags, and every flag is one the engine's argument parser
defines (tests/assets/engine_args/, copied from the engines' sources with the commits read).

Each script is run by bash once per node with NODE_RANK and NODE_ADDR_<n> set and the engines
replaced by stubs that record their arguments, so the test sees exactly what a node would run.
MoE plans also carry the large-scale deployment the cost model priced (render/launch_moe.py):
DeepEP all-to-all and its kernels, two-batch overlap, attention DP, EP, EPLB, MTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from solver.inputs.condition import SpeculativeSpec, build_condition, load_condition
from solver.physics.disaggregation import pool_condition
from solver.render.export import render_launch
from solver.render.export_pools import render_pools_launch
from solver.render.launch_moe import moe_deployment
from solver.review.check import ShortPlan, check_given
from tests.paths import REPO
from tests.render.pool_plans import deepseek, deepseek_condition, dense

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
    if argv[:2] == ["trtllm-serve", "disaggregated"]:  # a subcommand: its own argument list
        return [("trtllm-serve disaggregated", [w for w in argv[2:] if w.startswith("-")])]
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


# ---- the large-scale MoE deployment (render/launch_moe.py) ----------------------------------------
# DeepEP all-to-all and its kernels, two-batch overlap, attention DP, expert parallelism, redundant
# experts with EPLB and MTP speculative decoding, as the cost model prices them for the plan.

DEEPSEEK = REPO / "conditions" / "deepseek-v3-h800x144.yaml"
SGLANG_MTP = ("--speculative-algorithm", "--speculative-num-steps", "--speculative-eagle-topk",
              "--speculative-num-draft-tokens")
MOE_FLAGS = {"--moe-a2a-backend", "--enable-dp-attention", "--ep-size", "--enable-eplb",
             "--ep-num-redundant-experts", "--enable-expert-parallel", "--all2all-backend",
             "--enable-dbo", "--eplb-config", "--deepep-mode", "--enable-two-batch-overlap",
             "--speculative-config", *SGLANG_MTP}
MOE_NOTES = ("DeepEP", "two-batch overlap", "--deepep-mode", "--enable-two-batch-overlap",
             "speculative", "redundant")


def _servers(files: dict[str, str], path: str, tmp_path: Path, recorded) -> list[list[str]]:
    """Every node's engine servers of one script (run with stub engines), each flag checked
    against the engine's recorded argument list."""
    script = tmp_path / path.replace("/", "-")
    script.write_text(files[path])
    nodes = sorted(int(n) for n in re.findall(r"^  (\d+)\)$", files[path], re.MULTILINE)) or [0]
    servers = []
    for node in nodes:
        for argv in _run_node(script, node, nodes, tmp_path):
            for program, flags in _segments(argv):
                unknown = [f for f in flags if f not in recorded[program]]
                assert not unknown, f"{path}, node {node}: {program} has no {unknown}"
            if argv[0] in ("vllm", "python"):
                servers.append(argv)
    assert servers, path
    return servers


def _values(argv: list[str]) -> dict[str, str | None]:
    """Each flag of a command and its value (None for a switch)."""
    return {w: (argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None)
            for i, w in enumerate(argv) if w.startswith("--")}


def _deepseek(two_batch_overlap: bool | None):
    condition = load_condition(DEEPSEEK)
    policy = condition.policy.model_copy(update={"two_batch_overlap": two_batch_overlap})
    return condition.model_copy(update={"policy": policy})


@pytest.mark.parametrize("overlap", [None, True, False])
def test_deepseek_large_ep_launch_lines_carry_the_modelled_deployment(overlap, recorded, tmp_path) -> None:
    """DeepSeek-V3 on 18 x 8 H800, attention DP144 and EP144 with 32 redundant experts: SGLang
    runs DeepEP (--deepep-mode is left at auto, which picks each batch's kernels as the model
    does), DP attention over 144 ranks, EP144, EPLB with the placement's redundant slots; vLLM
    the same with the normal (high-throughput) kernels of the plan's steps, every one of which
    carries prompt tokens. Two-batch overlap follows the cost model's choice for the plan
    (SGLang --enable-two-batch-overlap, vLLM --enable-dbo); no speculative flags without
    workload.speculative."""
    condition = _deepseek(two_batch_overlap=overlap)
    plan = check_given(condition, ShortPlan(tp=1, attn_dp=144, ep=144, batch_size=2304)).plan
    p, placement = plan.parallelism, plan.expert_placement
    redundant = placement.slots_per_gpu * p.ep - condition.model.num_experts
    assert redundant == 32
    deployment = moe_deployment(condition, plan)
    assert deployment.kernels == {"mix": "normal", "chunk": "normal"}
    assert bool(deployment.overlap_steps) is (overlap is True)  # default: not shorter here
    files = render_launch(condition, plan)
    for argv in _servers(files, "launch/sglang.sh", tmp_path, recorded):
        flags = _values(argv)
        assert flags["--moe-a2a-backend"] == "deepep"
        assert (flags["--tp-size"], flags["--dp-size"], flags["--ep-size"]) == (
            str(p.attn_dp * p.tp), str(p.attn_dp), str(p.ep))
        assert "--enable-dp-attention" in flags and "--enable-eplb" in flags
        assert flags["--ep-num-redundant-experts"] == str(redundant)
        assert ("--enable-two-batch-overlap" in flags) is bool(overlap)
        assert not [w for w in flags if w.startswith("--speculative")]
    sglang = files["launch/sglang.sh"]
    assert "--deepep-mode" not in sglang  # auto, SGLang's default, is what an aggregated plan needs
    assert "two-batch overlap" not in sglang  # every step overlaps or none: nothing to note
    for argv in _servers(files, "launch/vllm.sh", tmp_path, recorded):
        flags = _values(argv)
        assert flags["--data-parallel-size"] == str(p.attn_dp) and "--enable-expert-parallel" in flags
        assert flags["--all2all-backend"] == "deepep_high_throughput"
        assert ("--enable-dbo" in flags) is bool(overlap)
        assert "--enable-eplb" in flags
        assert json.loads(flags["--eplb-config"]) == {"num_redundant_experts": redundant}
        assert "--speculative-config" not in flags


def test_deepseek_disaggregated_pools_get_their_kernels(recorded, tmp_path) -> None:
    """DeepSeek's published units as one plan: the prefill pool (EP32 over 4 nodes, ADP8 x TP4)
    runs DeepEP's normal kernels with two-batch overlap where the model chose it, the decode pool
    (EP144, ADP144) the low-latency kernels: SGLang pins them with each pool's --deepep-mode and
    overlaps with --enable-two-batch-overlap, vLLM writes the kernels as its all2all backend and
    overlaps with --enable-dbo."""
    condition, plan = deepseek()
    files = render_pools_launch(condition, plan)
    for name, kernel, backend in (("prefill", "normal", "deepep_high_throughput"),
                                  ("decode", "low_latency", "deepep_low_latency")):
        pool = getattr(plan.pools, name)
        p = pool.plan.parallelism
        deployment = moe_deployment(pool_condition(condition, name, pool.gpus), pool.plan, name)
        assert set(deployment.kernels.values()) == {kernel}
        redundant = pool.plan.expert_placement.slots_per_gpu * p.ep - condition.model.num_experts
        overlap = bool(deployment.overlap_steps)
        assert not [note for note in ("--deepep-mode", "two-batch overlap")
                    if note in _header(files[f"launch/{name}-sglang.sh"])]
        for argv in _servers(files, f"launch/{name}-sglang.sh", tmp_path, recorded):
            flags = _values(argv)
            assert flags["--disaggregation-mode"] == name and flags["--moe-a2a-backend"] == "deepep"
            assert flags["--deepep-mode"] == kernel
            assert ("--enable-two-batch-overlap" in flags) is overlap
            assert (flags["--dp-size"], flags["--ep-size"]) == (str(p.attn_dp), str(p.ep))
            assert flags["--ep-num-redundant-experts"] == str(redundant) == "32"
        for argv in _servers(files, f"launch/{name}-vllm.sh", tmp_path, recorded):
            flags = _values(argv)
            assert flags["--all2all-backend"] == backend and ("--enable-dbo" in flags) is overlap
            assert json.loads(flags["--eplb-config"]) == {"num_redundant_experts": redundant}
    assert moe_deployment(pool_condition(condition, "prefill", plan.pools.prefill.gpus),
                          plan.pools.prefill.plan, "prefill").overlap_steps  # EP over 4 nodes


def _header(script: str) -> str:
    """The comment lines of a launch script (what it says it cannot express)."""
    return "\n".join(line for line in script.splitlines() if line.startswith("#"))


def _speculative(condition, draft_tokens: int):
    spec = SpeculativeSpec(draft_tokens=draft_tokens, acceptance_rate=0.85)
    return condition.model_copy(update={"workload": condition.workload.model_copy(
        update={"speculative": spec})})


def _assert_mtp(flags: dict[str, str | None], engine: str, drafts: int | None) -> None:
    """MTP with `drafts` draft tokens per decode step as the engine's flags (None: no MTP)."""
    if drafts is None:
        assert not [w for w in flags if w.startswith("--speculative")], (engine, flags)
    elif engine == "sglang":
        assert [flags[w] for w in SGLANG_MTP] == ["NEXTN", str(drafts), "1", str(drafts + 1)]
    else:
        assert json.loads(flags["--speculative-config"]) == {"method": "mtp",
                                                             "num_speculative_tokens": drafts}


def test_mtp_speculative_decoding_is_written_with_the_plan_draft_count(recorded, tmp_path) -> None:
    """workload.speculative (MTP, 2 drafts) on an aggregated DeepSeek-V3 plan: SGLang
    --speculative-algorithm NEXTN --speculative-num-steps 2 --speculative-eagle-topk 1
    --speculative-num-draft-tokens 3, vLLM --speculative-config with method mtp and 2 tokens, on
    every server of every node; each flag in the engine's recorded argument list, and no header
    note left for them."""
    condition = build_condition({
        "model": "deepseek-v3", "hardware": {"gpu": "h200-sxm-141gb", "num_nodes": 2},
        "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
        "workload": {"input_tokens": 2048, "output_tokens": 256, "batch_size": 32,
                     "speculative": {"draft_tokens": 2, "acceptance_rate": 0.85}}}, "c.yaml", "c")
    plan = check_given(condition, ShortPlan(attn_dp=16, ep=16, batch_size=32)).plan
    files = render_launch(condition, plan)
    for engine in ("sglang", "vllm"):
        assert "speculative" not in _header(files[f"launch/{engine}.sh"]), engine
        for argv in _servers(files, f"launch/{engine}.sh", tmp_path, recorded):
            _assert_mtp(_values(argv), engine, 2)


def test_mtp_on_the_published_disaggregated_deepseek_plan(recorded, tmp_path) -> None:
    """The published disaggregated DeepSeek units with MTP (1 draft: DeepSeek-V3 has one MTP module):
    SGLang's decode and prefill servers both carry the speculative flags (SGLang's P/D
    deployments start both pools with them), beside each pool's --deepep-mode; vLLM's decode
    engines carry --speculative-config, its prefill engines do not (they decode no step)."""
    condition, plan = deepseek(_speculative(deepseek_condition(), 1))
    files = render_pools_launch(condition, plan)
    for name, kernel in (("prefill", "normal"), ("decode", "low_latency")):
        for argv in _servers(files, f"launch/{name}-sglang.sh", tmp_path, recorded):
            flags = _values(argv)
            assert flags["--deepep-mode"] == kernel
            _assert_mtp(flags, "sglang", 1)
        for argv in _servers(files, f"launch/{name}-vllm.sh", tmp_path, recorded):
            _assert_mtp(_values(argv), "vllm", 1 if name == "decode" else None)
        for engine in ("sglang", "vllm"):
            assert "speculative" not in _header(files[f"launch/{name}-{engine}.sh"])


def test_sglang_overlap_without_deepep_stays_a_header_note(recorded, tmp_path) -> None:
    """EP8 x ETP2 over 16 GPUs with two-batch overlap forced: SGLang's deepep backend needs ep =
    tp-size and its two-batch overlap an all-to-all backend, so neither flag is written and the
    header says what runs instead."""
    condition = build_condition({
        "model": "deepseek-v3", "hardware": {"gpu": "h200-sxm-141gb", "num_nodes": 2},
        "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
        "policy": {"two_batch_overlap": True},
        "workload": {"input_tokens": 2048, "output_tokens": 256, "batch_size": 32}}, "c.yaml", "c")
    plan = check_given(condition, ShortPlan(attn_dp=16, ep=8, etp=2, batch_size=32)).plan
    assert moe_deployment(condition, plan).overlap_steps
    files = render_launch(condition, plan)
    header = _header(files["launch/sglang.sh"])
    assert "SGLang's --enable-two-batch-overlap needs an all-to-all backend" in header
    assert "SGLang's deepep backend needs ep = tp-size (16)" in header
    for argv in _servers(files, "launch/sglang.sh", tmp_path, recorded):
        flags = _values(argv)
        assert not {"--moe-a2a-backend", "--deepep-mode", "--enable-two-batch-overlap"} & set(flags)


@pytest.mark.parametrize("degrees", [{"tp": 4, "dp": 2}, {"tp": 8}])
def test_dense_plans_gain_no_moe_flags(degrees, recorded, tmp_path) -> None:
    condition = load_condition(REPO / "conditions" / "llama70b-h100x8.yaml")
    files = render_launch(condition, check_given(condition, ShortPlan(batch_size=16, **degrees)).plan)
    _assert_no_moe(files, ("launch/sglang.sh", "launch/vllm.sh"), tmp_path, recorded)


def test_dense_pools_gain_no_moe_flags(recorded, tmp_path) -> None:
    files = render_pools_launch(*dense())
    _assert_no_moe(files, [f"launch/{pool}-{engine}.sh" for pool in ("prefill", "decode")
                           for engine in ("sglang", "vllm")], tmp_path, recorded)


def _assert_no_moe(files: dict[str, str], paths, tmp_path: Path, recorded) -> None:
    for path in paths:
        assert not [note for note in MOE_NOTES if note in files[path]], path
        for argv in _servers(files, path, tmp_path, recorded):
            assert not MOE_FLAGS & set(_values(argv)), (path, MOE_FLAGS & set(_values(argv)))
