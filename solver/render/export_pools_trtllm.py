"""TensorRT-LLM launch files for a disaggregated plan (export_pools.py): each pool's servers and the
front end in front of them.

TensorRT-LLM serves disaggregated through `trtllm-serve disaggregated -c CONFIG`, an OpenAI server
that runs each request's prompt on a context server and its decoding on a generation server. Both
are plain `trtllm-serve MODEL` servers whose LLM API options (--extra_llm_api_options) carry
`cache_transceiver_config`, the KV cache's way from one to the other. Files:

- launch/prefill-trtllm.yaml, launch/decode-trtllm.yaml: each pool's LLM API options, the
  aggregated exporter's (export.trtllm_options on the pool's own plan and GPUs) plus
  cache_transceiver_config {backend: DEFAULT (NIXL unless a TRTLLM_USE_<backend>_KVCACHE variable
  picks another), max_tokens_in_buffer: one prompt's tokens, the KV the plan sends} and, on the
  context servers, disable_overlap_scheduler (TensorRT-LLM's disaggregated examples: the overlap
  scheduler is not supported there);
- launch/prefill-trtllm.sh, launch/decode-trtllm.sh: each pool's trtllm-serve commands, node by
  node as the aggregated exporter writes them, each listening on every interface (--host 0.0.0.0,
  launch_nodes.py) for the front end;
- launch/disagg-trtllm.yaml: the front end's config: hostname, port, backend, and per pool
  (context_servers, generation_servers) num_instances, urls and the pool's LLM API options (read
  by the MPI launcher `trtllm-serve disaggregated_mpi_worker`; the front end itself routes by the
  urls). A url's host is a placeholder, PREFILL_HOST_<i> or DECODE_HOST_<j>, its port the one the
  pool's script gives that instance;
- launch/router-trtllm.sh: fills in the hosts from its environment and runs the front end.

Keys and flags are checked against tests/assets/engine_args/trtllm.yaml (TensorRT-LLM's
llm_args.py, disagg_utils.py and commands/serve.py, with the commits read).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import yaml

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.render.export import launch_script, trtllm_options, trtllm_options_file, trtllm_yaml
from solver.render.launch_facts import Launch
from solver.render.launch_nodes import ALL_INTERFACES, NodeCommand
from solver.render.writer import launch_path

SECTIONS = {"prefill": "context_servers", "decode": "generation_servers"}
KV_TRANSCEIVER_BACKEND = "DEFAULT"
FRONT_END_PORT = 8000
FRONT_END_CONFIG, FRONT_END_SCRIPT = "disagg-trtllm.yaml", "router-trtllm.sh"
SERVER = ("trtllm-serve",)


@dataclass(frozen=True)
class TrtllmPool:
    """One pool's TensorRT-LLM servers: their LLM API options, what those cannot express, every
    node's command (pool-relative node numbers) and where the pool's nodes start in the cluster."""

    name: str  # prefill | decode
    options: dict[str, object]
    launch: Launch
    commands: list[NodeCommand]
    first_node: int

    @property
    def servers(self) -> list[tuple[int, str]]:
        """(pool node, port) of each instance's HTTP server, in instance order: the node of the
        command that runs its trtllm-serve (under mpirun: the first rank's, the replica's first)."""
        out = []
        for c in self.commands:
            if SERVER[0] in c.words:
                port = max(i for i, word in enumerate(c.words) if word == "--port") + 1
                out.append((c.node, c.words[port]))
        return out

    def host(self, instance: int) -> str:
        """The placeholder router-trtllm.sh replaces with the address of `instance`'s server."""
        return f"{self.name.upper()}_HOST_{instance}"


def trtllm_pool(condition: Condition, plan: Plan, name: str, commands: list[NodeCommand],
                first_node: int) -> TrtllmPool:
    """The `name` pool's servers from its own condition and plan (physics.disaggregation
    pool_condition) and its engines' commands (export.launch_commands: `trtllm`)."""
    options, launch = trtllm_options(condition, plan, name)
    options["cache_transceiver_config"] = {"backend": KV_TRANSCEIVER_BACKEND,
                                           "max_tokens_in_buffer": condition.workload.input_tokens}
    if name == "prefill":
        options["disable_overlap_scheduler"] = True
    return TrtllmPool(name, options, launch, commands, first_node)


def trtllm_pool_files(condition: Condition, plan: Plan, pool: TrtllmPool,
                      notes: list[str]) -> dict[str, str]:
    """launch/<pool>-trtllm.yaml and launch/<pool>-trtllm.sh; `notes` open the header's list."""
    launch = replace(pool.launch, lost=[*notes, *pool.launch.lost])
    return {
        launch_path(trtllm_options_file(pool.name)): trtllm_yaml(
            condition, plan, launch, pool.commands, pool.options, pool.name),
        launch_path(f"{pool.name}-trtllm.sh"): launch_script(
            condition, plan, launch, pool.commands, here=True),
    }


def front_end_config(pools: list[TrtllmPool]) -> dict[str, object]:
    """The `trtllm-serve disaggregated` config, url hosts as placeholders."""
    config: dict[str, object] = {"hostname": ALL_INTERFACES, "port": FRONT_END_PORT,
                                 "backend": "pytorch"}
    for pool in pools:
        urls = [f"{pool.host(i)}:{port}" for i, (_, port) in enumerate(pool.servers)]
        config[SECTIONS[pool.name]] = {"num_instances": len(urls), "urls": urls, **pool.options}
    return config


def _server_lines(pools: list[TrtllmPool]) -> list[str]:
    """Where each instance's server listens: the pool node, the cluster node and the port."""
    return [f"#   {pool.host(i)}: {pool.name} instance {i}'s trtllm-serve, on the {pool.name} pool's "
            f"node {node} (cluster node {pool.first_node + node}), port {port}"
            for pool in pools for i, (node, port) in enumerate(pool.servers)]


def _front_end_header(plan: Plan, pools: list[TrtllmPool], lost: list[str]) -> list[str]:
    return [
        f"# TensorRT-LLM front end for plan '{plan.condition}': `trtllm-serve disaggregated` runs "
        "each request's prompt on a context server (the prefill pool) and its decoding on a "
        "generation server (the decode pool), which takes over the prompt's KV cache "
        "(cache_transceiver_config in prefill-trtllm.yaml and decode-trtllm.yaml).",
        "# Start prefill-trtllm.sh and decode-trtllm.sh first; router-trtllm.sh replaces each "
        f"host placeholder of {FRONT_END_CONFIG} with the variable of that name (the address of "
        f"that server's node) and listens on port {FRONT_END_PORT} of every interface (run it "
        "where that port is free):",
        *_server_lines(pools),
        "#",
        "# Not expressible in TensorRT-LLM (what this file does instead):",
        *(f"#   - {item}" for item in lost),
    ]


def front_end_files(plan: Plan, pools: list[TrtllmPool], lost: list[str]) -> dict[str, str]:
    """launch/disagg-trtllm.yaml and launch/router-trtllm.sh."""
    header = _front_end_header(plan, pools, lost)
    config = "\n".join([*header, f"# Run with: {FRONT_END_SCRIPT} (trtllm-serve disaggregated -c "
                                 "this file, hosts filled in)", ""])
    config += yaml.safe_dump(front_end_config(pools), sort_keys=False)
    hosts = [pool.host(i) for pool in pools for i in range(len(pool.servers))]
    script = ["#!/usr/bin/env bash", *header, "", "set -euo pipefail",
              'HERE="$(cd "$(dirname "$0")" && pwd)"']
    script += [f': "${{{host}:?set {host} to the address of the node of that server (the header '
               'of this script)}"' for host in hosts]
    script += ['CONFIG="$(mktemp "${TMPDIR:-/tmp}/disagg-trtllm.XXXXXX")"',
               "sed " + " ".join(f'-e "s|{host}:|${{{host}}}:|"' for host in hosts)
               + f' "$HERE/{FRONT_END_CONFIG}" > "$CONFIG"',
               'trtllm-serve disaggregated -c "$CONFIG"']
    return {launch_path(FRONT_END_CONFIG): config, launch_path(FRONT_END_SCRIPT): "\n".join(script) + "\n"}
