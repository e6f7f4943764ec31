"""`paraplan solve --export` of a disaggregated plan: launch scripts for each pool's servers and
for the router in front of them.

- launch/prefill-vllm.sh, launch/decode-vllm.sh: each pool's instances as the aggregated exporter
  writes them (render/export.py, on the pool's own plan and GPUs), every `vllm serve` with
  `--kv-transfer-config` naming the NixlConnector (kv_role kv_both: the connector decides per
  request which side sends);
- launch/prefill-sglang.sh, launch/decode-sglang.sh: the same with `--disaggregation-mode
  prefill|decode --disaggregation-transfer-backend mooncake`;
- launch/router-sglang.sh: SGLang's router (`python -m sglang_router.launch_router
  --pd-disaggregation`) over every instance's head.

Node numbers in a pool's scripts are the pool's own (NODE_RANK 0 is the pool's first node); the
header says which cluster nodes they are. Flags are checked against tests/assets/engine_args/.
"""

from __future__ import annotations

from dataclasses import replace

from solver.document.plan import Plan, PoolPlan
from solver.inputs.condition import Condition
from solver.physics.disaggregation import pool_condition
from solver.render.export import launch_commands, launch_script, sglang_launch, vllm_launch
from solver.render.launch_facts import Launch
from solver.render.launch_nodes import NodeCommand
from solver.render.writer import launch_path

POOLS = ("prefill", "decode")
KV_CONNECTOR = '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'  # quoted by the script
TRANSFER_BACKEND = "mooncake"
ROUTER_PORT = 8000
NOT_EXPRESSIBLE = [
    "TensorRT-LLM: disaggregated serving runs through its own orchestrator (trtllm-serve "
    "disaggregated with a YAML of context and generation servers); not written",
    "the planner's operating rate and the pools' instance counts: the router spreads requests "
    "evenly, it does not hold the planned rate",
]


def _pool(plan: Plan, name: str) -> PoolPlan:
    assert plan.pools is not None
    return plan.pools.prefill if name == "prefill" else plan.pools.decode


def _with_flags(commands: list[NodeCommand], program: tuple[str, ...], flags: list[str]) -> list[NodeCommand]:
    return [replace(c, words=(*c.words, *flags)) if c.words[:len(program)] == program else c
            for c in commands]


def _nodes_note(condition: Condition, pool: PoolPlan, name: str) -> str:
    per_node = condition.cluster.gpus_per_node
    first, last = pool.first_gpu // per_node, (pool.first_gpu + pool.gpus - 1) // per_node
    return (f"the {name} pool: {pool.instances} instance(s) on cluster nodes {first}-{last} (GPUs "
            f"{pool.first_gpu}-{pool.first_gpu + pool.gpus - 1}); NODE_RANK and NODE_ADDR_n count "
            "the pool's own nodes from 0")


def _pool_scripts(condition: Condition, plan: Plan, name: str) -> dict[str, str]:
    pool = _pool(plan, name)
    cond = pool_condition(condition, name, pool.gpus)
    commands = launch_commands(cond, pool.plan, name)
    note = _nodes_note(condition, pool, name)
    engines: list[tuple[str, Launch, list[NodeCommand]]] = [
        ("vllm", vllm_launch(cond, pool.plan, name),
         _with_flags(commands["vllm"], ("vllm", "serve"), ["--kv-transfer-config", KV_CONNECTOR])),
        ("sglang", sglang_launch(cond, pool.plan, name),
         _with_flags(commands["sglang"], ("python", "-m", "sglang.launch_server"),
                     ["--disaggregation-mode", name, "--disaggregation-transfer-backend",
                      TRANSFER_BACKEND])),
    ]
    files = {}
    for engine, launch, cmds in engines:
        launch.lost[:0] = [note, *NOT_EXPRESSIBLE]
        if engine == "vllm":
            launch.lost.append("vLLM has no prefill/decode router of its own: put a KV-transfer-aware "
                               "proxy in front (vLLM's disaggregated examples, llm-d or Dynamo)")
        files[launch_path(f"{name}-{engine}.sh")] = launch_script(cond, pool.plan, launch, cmds)
    return files


def _router_script(plan: Plan) -> str:
    lines = ["#!/usr/bin/env bash",
             f"# SGLang router for plan '{plan.condition}': requests go to a prefill instance, whose "
             "KV cache a decode instance takes over.",
             "# Set PREFILL_URL_i and DECODE_URL_j to http://<head node of that instance>:<its --port> "
             "(the pools' scripts print each instance's head node and port).",
             *(f"#   - {item}" for item in NOT_EXPRESSIBLE), "", "set -euo pipefail"]
    words = ["python", "-m", "sglang_router.launch_router", "--pd-disaggregation"]
    for name in POOLS:
        for i in range(_pool(plan, name).instances):
            var = f"{name.upper()}_URL_{i}"
            lines.append(f': "${{{var}:?set {var} to http://<head node of {name} instance {i}>:<port>}}"')
            words += [f"--{name}", f'"${var}"']
    words += ["--host", "0.0.0.0", "--port", str(ROUTER_PORT)]
    return "\n".join([*lines, " ".join(words)]) + "\n"


def render_pools_launch(condition: Condition, plan: Plan) -> dict[str, str]:
    """Every launch file of a disaggregated plan: relative path -> text."""
    files: dict[str, str] = {}
    for name in POOLS:
        files |= _pool_scripts(condition, plan, name)
    files[launch_path("router-sglang.sh")] = _router_script(plan)
    return files
