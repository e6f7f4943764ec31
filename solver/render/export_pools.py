"""`paraplan solve --export` of a disaggregated plan: launch scripts for each pool's servers and
for the router in front of them.

- launch/prefill-vllm.sh, launch/decode-vllm.sh: each pool's instances as the aggregated exporter
  writes them (render/export.py, on the pool's own plan and GPUs), every `vllm serve` with
  `--kv-transfer-config` naming the NixlConnector (kv_role kv_both: the connector decides per
  request which side sends);
- launch/prefill-sglang.sh, launch/decode-sglang.sh: the same with `--disaggregation-mode
  prefill|decode --disaggregation-transfer-backend mooncake`, each server on every interface
  (`--host 0.0.0.0`, launch_nodes.py) so that the router reaches it from its own node;
- launch/router-sglang.sh: SGLang's router (`python -m sglang_router.launch_router
  --pd-disaggregation`) over every instance's head;
- launch/prefill-trtllm.yaml, launch/prefill-trtllm.sh, launch/decode-trtllm.yaml,
  launch/decode-trtllm.sh, launch/disagg-trtllm.yaml, launch/router-trtllm.sh: TensorRT-LLM's
  context and generation servers and its `trtllm-serve disaggregated` front end
  (export_pools_trtllm.py).

Node numbers in a pool's scripts are the pool's own (NODE_RANK 0 is the pool's first node); the
header says which cluster nodes they are. Flags are checked against tests/assets/engine_args/.
"""

from __future__ import annotations

from solver.document.plan import Plan, PoolPlan
from solver.inputs.condition import Condition
from solver.physics.disaggregation import pool_condition
from solver.render.export import launch_commands, launch_script, sglang_launch, vllm_launch
from solver.render.export_pools_trtllm import (
    TrtllmPool,
    front_end_files,
    trtllm_pool,
    trtllm_pool_files,
)
from solver.render.launch_facts import Launch
from solver.render.launch_nodes import ALL_INTERFACES, NodeCommand, with_flags
from solver.render.writer import launch_path

POOLS = ("prefill", "decode")
KV_CONNECTOR = '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'  # quoted by the script
TRANSFER_BACKEND = "mooncake"
ROUTER_PORT = 8000
NOT_EXPRESSIBLE = [
    "the planner's operating rate and the pools' instance counts: the router spreads requests "
    "evenly, it does not hold the planned rate",
]


def _pool(plan: Plan, name: str) -> PoolPlan:
    assert plan.pools is not None
    return plan.pools.prefill if name == "prefill" else plan.pools.decode


def _first_node(condition: Condition, pool: PoolPlan) -> int:
    return pool.first_gpu // condition.cluster.gpus_per_node


def _nodes_note(condition: Condition, pool: PoolPlan, name: str) -> str:
    per_node = condition.cluster.gpus_per_node
    first, last = _first_node(condition, pool), (pool.first_gpu + pool.gpus - 1) // per_node
    return (f"the {name} pool: {pool.instances} instance(s) on cluster nodes {first}-{last} (GPUs "
            f"{pool.first_gpu}-{pool.first_gpu + pool.gpus - 1}); NODE_RANK and NODE_ADDR_n count "
            "the pool's own nodes from 0")


def _pool_scripts(condition: Condition, plan: Plan, name: str) -> tuple[dict[str, str], TrtllmPool]:
    """The pool's vLLM, SGLang and TensorRT-LLM files, and its TensorRT-LLM servers for the front
    end."""
    pool = _pool(plan, name)
    cond = pool_condition(condition, name, pool.gpus)
    commands = launch_commands(cond, pool.plan, name)
    notes = [_nodes_note(condition, pool, name), *NOT_EXPRESSIBLE]
    engines: list[tuple[str, Launch, list[NodeCommand]]] = [
        ("vllm", vllm_launch(cond, pool.plan, name),
         with_flags(commands["vllm"], ("vllm", "serve"), ["--kv-transfer-config", KV_CONNECTOR])),
        ("sglang", sglang_launch(cond, pool.plan, name),
         with_flags(commands["sglang"], ("python", "-m", "sglang.launch_server"),
                    ["--disaggregation-mode", name, "--disaggregation-transfer-backend",
                     TRANSFER_BACKEND])),
    ]
    files = {}
    for engine, launch, cmds in engines:
        launch.lost[:0] = notes
        if engine == "vllm":
            launch.lost.append("vLLM has no prefill/decode router of its own: put a KV-transfer-aware "
                               "proxy in front (vLLM's disaggregated examples, llm-d or Dynamo)")
        files[launch_path(f"{name}-{engine}.sh")] = launch_script(cond, pool.plan, launch, cmds)
    trt = trtllm_pool(cond, pool.plan, name, commands["trtllm"], _first_node(condition, pool))
    return files | trtllm_pool_files(cond, pool.plan, trt, notes), trt


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
    words += ["--host", ALL_INTERFACES, "--port", str(ROUTER_PORT)]
    return "\n".join([*lines, " ".join(words)]) + "\n"


def render_pools_launch(condition: Condition, plan: Plan) -> dict[str, str]:
    """Every launch file of a disaggregated plan: relative path -> text."""
    files: dict[str, str] = {}
    trt: list[TrtllmPool] = []
    for name in POOLS:
        pool_files, trt_pool = _pool_scripts(condition, plan, name)
        files |= pool_files
        trt.append(trt_pool)
    files[launch_path("router-sglang.sh")] = _router_script(plan)
    return files | front_end_files(plan, trt, NOT_EXPRESSIBLE)
