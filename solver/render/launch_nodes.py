"""Where each engine's servers run: the plan's GPUs grouped into the engine's servers and ranks, and
the command every node runs, with the engine's own multi-node flags.

    vLLM     one deployment of data-parallel ranks (dense: every replica; MoE: the attention-DP
             ranks of one replica, so one deployment per replica). Ranks on several nodes: the head
             runs `--data-parallel-size-local/--data-parallel-address/--data-parallel-rpc-port`,
             the others the same with `--headless --data-parallel-start-rank`. One rank over several
             nodes: `--nnodes/--node-rank/--master-addr/--master-port`, `--headless` off the head.
             Several ranks each over several nodes: a Ray cluster (`ray start`) and
             `--data-parallel-backend ray` on the head.
    SGLang   one server per replica (dense replicas of one node share a server: `--dp-size`); a
             replica over several nodes: `--nnodes/--node-rank/--dist-init-addr` on each.
    TRT-LLM  one trtllm-serve per replica; a replica over several nodes: the MPI form, `mpirun -np
             R -H host:slots,...` with `trtllm-llmapi-launch` on the replica's first node.

Servers that share a node get their GPUs through CUDA_VISIBLE_DEVICES and their own ports. Node
addresses are the script's NODE_ADDR_<n> variables, the node a script runs on its NODE_RANK.

Every HTTP server listens on all interfaces: a router, a front end or a client on another node has to
reach it. SGLang binds 127.0.0.1 unless told (--host, docs/advanced_features/server_arguments.md)
and trtllm-serve localhost (--host, tensorrt_llm/commands/serve.py), so their servers get
`--host 0.0.0.0` beside their port; `vllm serve` binds every interface when --host is unset
(FrontendArgs.host None, api_server.py binds (args.host or "", port)), so its commands keep that
default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from solver.document.plan import Plan

VLLM_PORT, SGLANG_PORT, TRTLLM_PORT = 8000, 30000, 8000  # each engine's default HTTP port
VLLM_DP_RPC_PORT, VLLM_MASTER_PORT, SGLANG_DIST_PORT, RAY_PORT = 13345, 29500, 50000, 6379
ALL_INTERFACES = "0.0.0.0"


@dataclass(frozen=True)
class NodeCommand:
    """One command a node runs; `server` commands run together (in the background when a node runs
    several), setup commands (`ray start`) first, one after the other."""

    node: int
    words: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    server: bool = True
    note: str = ""  # what it is, for the script's comment and plan reviewers


def with_flags(commands: list[NodeCommand], program: tuple[str, ...],
               flags: list[str]) -> list[NodeCommand]:
    """`flags` appended to every command that runs `program` (its words in a row, anywhere: after
    `mpirun ... trtllm-llmapi-launch` too, whose server's flags end the command)."""
    def runs(words: tuple[str, ...]) -> bool:
        return any(words[i:i + len(program)] == program for i in range(len(words)))
    return [replace(c, words=(*c.words, *flags)) if runs(c.words) else c for c in commands]


def node_addr(node: int) -> str:
    return f"$NODE_ADDR_{node}"


def replica_gpus(plan: Plan) -> list[list[int]]:
    """The GPU ids of every replica, in replica order."""
    by_replica: dict[int, list[int]] = {}
    for d in plan.devices:
        by_replica.setdefault(d.replica, []).append(d.gpu)
    return [sorted(by_replica[r]) for r in sorted(by_replica)]


def attention_ranks(plan: Plan, replica: int) -> list[list[int]]:
    """The GPU ids of every attention-DP rank of one replica (all its stages)."""
    by_rank: dict[int, list[int]] = {}
    for d in plan.devices:
        if d.replica == replica:
            by_rank.setdefault(d.attn_dp_rank, []).append(d.gpu)
    return [sorted(by_rank[a]) for a in sorted(by_rank)]


class Layout:
    """GPU ids to nodes for one plan."""

    def __init__(self, plan: Plan, gpus_per_node: int) -> None:
        self.per_node = gpus_per_node
        self.node_of = {d.gpu: d.node for d in plan.devices}

    def nodes(self, gpus: Sequence[int]) -> list[int]:
        return sorted({self.node_of[g] for g in gpus})

    def visible(self, gpus: Sequence[int], node: int) -> tuple[tuple[str, str], ...]:
        """CUDA_VISIBLE_DEVICES for the part of `gpus` on `node`, unless it is the whole node."""
        local = sorted(g % self.per_node for g in gpus if self.node_of[g] == node)
        if len(local) == self.per_node:
            return ()
        return (("CUDA_VISIBLE_DEVICES", ",".join(map(str, local))),)


class PortBook:
    """Ports of the servers that share a node: the engine's default, then the next ones."""

    def __init__(self, first: int) -> None:
        self.first, self.used = first, {}

    def take(self, node: int) -> int:
        n = self.used.get(node, 0)
        self.used[node] = n + 1
        return self.first + n


def listen(port: int) -> list[str]:
    """The flags of a server that binds loopback unless told (SGLang, trtllm-serve): its port, on
    every interface."""
    return ["--port", str(port), "--host", ALL_INTERFACES]


def _flatten(groups: Sequence[Sequence[int]]) -> list[int]:
    return [g for group in groups for g in group]


# ---- vLLM ----------------------------------------------------------------------------------------


def vllm_commands(plan: Plan, layout: Layout, moe: bool, server: list[str]) -> list[NodeCommand]:
    """Every node's vLLM commands; `server` is `vllm serve "$MODEL"` with the plan's flags."""
    replicas = replica_gpus(plan)
    deployments = [attention_ranks(plan, r) for r in range(len(replicas))] if moe else [replicas]
    ports, out = PortBook(VLLM_PORT), []
    for index, ranks in enumerate(deployments):
        out += _vllm_deployment(index, ranks, layout, ports, server)
    return out


def _vllm_deployment(index: int, ranks: list[list[int]], layout: Layout, ports: PortBook,
                     server: list[str]) -> list[NodeCommand]:
    gpus, rank_nodes = _flatten(ranks), [layout.nodes(r) for r in ranks]
    nodes = layout.nodes(gpus)
    head = nodes[0]
    port = ["--port", str(ports.take(head))]
    if len(nodes) == 1:
        return [NodeCommand(head, (*server, *port), layout.visible(gpus, head),
                            note=f"vLLM deployment {index}: {len(ranks)} rank(s) on node {head}")]
    if all(len(n) == 1 for n in rank_nodes):
        return _vllm_data_parallel(index, rank_nodes, gpus, layout, server, port)
    if len(ranks) == 1:
        return _vllm_one_rank(index, nodes, gpus, layout, server, port)
    return _vllm_ray(index, nodes, server, port)


def _vllm_data_parallel(index: int, rank_nodes: list[list[int]], gpus: list[int], layout: Layout,
                        server: list[str], port: list[str]) -> list[NodeCommand]:
    """Data-parallel ranks on several nodes, each rank inside one node: the head serves the API."""
    head, out = rank_nodes[0][0], []
    address = ["--data-parallel-address", node_addr(head),
               "--data-parallel-rpc-port", str(VLLM_DP_RPC_PORT + index)]
    for node in sorted({n[0] for n in rank_nodes}):
        local = [i for i, n in enumerate(rank_nodes) if n[0] == node]
        words = ["--data-parallel-size-local", str(len(local)), *address]
        if node == head:
            words = [*server, *words, *port]
        else:
            words = [*server, "--headless", *words, "--data-parallel-start-rank", str(local[0])]
        out.append(NodeCommand(node, tuple(words), layout.visible(gpus, node),
                               note=f"vLLM deployment {index}: data-parallel "
                               + (f"rank {local[0]}" if len(local) == 1 else
                                  f"ranks {local[0]}-{local[-1]}")
                               + (" and the API server" if node == head else " (headless)")))
    return out


def _vllm_one_rank(index: int, nodes: list[int], gpus: list[int], layout: Layout,
                   server: list[str], port: list[str]) -> list[NodeCommand]:
    """One engine (tensor and pipeline stages) over several nodes: the multiprocessing launch."""
    out = []
    for rank, node in enumerate(nodes):
        words = [*server, "--nnodes", str(len(nodes)), "--node-rank", str(rank),
                 "--master-addr", node_addr(nodes[0]), "--master-port", str(VLLM_MASTER_PORT + index)]
        words += port if rank == 0 else ["--headless"]
        out.append(NodeCommand(node, tuple(words), layout.visible(gpus, node),
                               note=f"vLLM deployment {index}: node {rank} of {len(nodes)} of one "
                               "engine" + (" and the API server" if rank == 0 else " (headless)")))
    return out


def _vllm_ray(index: int, nodes: list[int], server: list[str], port: list[str]) -> list[NodeCommand]:
    """Several data-parallel ranks, each over several nodes: vLLM places them through Ray."""
    head = nodes[0]
    out = [NodeCommand(head, ("ray", "start", "--head", "--port", str(RAY_PORT)), server=False,
                       note=f"vLLM deployment {index}: the Ray head")]
    out += [NodeCommand(n, ("ray", "start", "--address", f"{node_addr(head)}:{RAY_PORT}", "--block"),
                        note=f"vLLM deployment {index}: joins the Ray cluster") for n in nodes[1:]]
    out.append(NodeCommand(head, (*server, "--data-parallel-backend", "ray", *port),
                           (("VLLM_RAY_DP_PACK_STRATEGY", "span"),),
                           note=f"vLLM deployment {index}: every rank, placed by Ray (start nodes "
                           f"{', '.join(map(str, nodes[1:]))} first)"))
    return out


# ---- SGLang --------------------------------------------------------------------------------------


def sglang_commands(plan: Plan, layout: Layout, moe: bool, server: list[str]) -> list[NodeCommand]:
    """Every node's SGLang commands; `server` has no --dp-size for dense replicas: the replicas of
    one node share a server (`--dp-size` their number)."""
    replicas, ports, out = replica_gpus(plan), PortBook(SGLANG_PORT), []
    if not moe and all(len(layout.nodes(r)) == 1 for r in replicas):
        by_node: dict[int, list[list[int]]] = {}
        for gpus in replicas:
            by_node.setdefault(layout.nodes(gpus)[0], []).append(gpus)
        for node, group in sorted(by_node.items()):
            words = [*server, *(["--dp-size", str(len(group))] if len(group) > 1 else [])]
            out.append(NodeCommand(node, (*words, *listen(ports.take(node))),
                                   layout.visible(_flatten(group), node),
                                   note=f"SGLang server of the {len(group)} replica(s) on node {node}"))
        return out
    for index, gpus in enumerate(replicas):
        out += _sglang_replica(index, gpus, layout, ports, server)
    return out


def _sglang_replica(index: int, gpus: list[int], layout: Layout, ports: PortBook,
                    server: list[str]) -> list[NodeCommand]:
    nodes = layout.nodes(gpus)
    port = listen(ports.take(nodes[0]))
    if len(nodes) == 1:
        return [NodeCommand(nodes[0], (*server, *port), layout.visible(gpus, nodes[0]),
                            note=f"SGLang server of replica {index}")]
    init = f"{node_addr(nodes[0])}:{SGLANG_DIST_PORT + index}"
    return [NodeCommand(node, (*server, "--nnodes", str(len(nodes)), "--node-rank", str(rank),
                               "--dist-init-addr", init, *port), layout.visible(gpus, node),
                        note=f"SGLang replica {index}: node {rank} of {len(nodes)}")
            for rank, node in enumerate(nodes)]


# ---- TensorRT-LLM --------------------------------------------------------------------------------


def trtllm_commands(plan: Plan, layout: Layout, server: list[str]) -> list[NodeCommand]:
    """One trtllm-serve per replica; `server` is `trtllm-serve "$MODEL"` with the plan's flags. A
    replica over several nodes is one MPI world started from its first node."""
    ports, out = PortBook(TRTLLM_PORT), []
    for index, gpus in enumerate(replica_gpus(plan)):
        nodes = layout.nodes(gpus)
        port = listen(ports.take(nodes[0]))
        if len(nodes) == 1:
            out.append(NodeCommand(nodes[0], (*server, *port), layout.visible(gpus, nodes[0]),
                                   note=f"trtllm-serve of replica {index}"))
            continue
        hosts = ",".join(f"{node_addr(n)}:{sum(layout.node_of[g] == n for g in gpus)}" for n in nodes)
        out.append(NodeCommand(nodes[0], ("mpirun", "-np", str(len(gpus)), "-H", hosts,
                                          "trtllm-llmapi-launch", *server, *port),
                               note=f"replica {index}: one MPI world over nodes "
                               f"{', '.join(map(str, nodes))}, started here (mpirun reaches the "
                               "other nodes over SSH; the model and this launch folder must be at "
                               "the same paths there)"))
        out += [NodeCommand(n, (), server=False, note=f"replica {index}: its ranks on this node are "
                            f"started by mpirun on node {nodes[0]}") for n in nodes[1:]]
    return out
