"""hardware_env.json of the JSON trio: the GPU card (by device name), nodes and link bandwidths.

Units: the seed's `*_bw_gbps` fields are read as GB/s (its nvlink_bw_gbps 900 is H100 NVLink's
900 GB/s aggregate; in Gb/s it would be 8x slower than PCIe).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported, key_origin
from solver.inputs.card_library import find_card, known_cards_text

# GPU name token -> card (longest first so "h200" wins over "h20")
GPU_NAMES = (
    ("mi300x", "mi300x"),
    ("h200", "h200-sxm-141gb"),
    ("h100", "h100-sxm-80gb"),
    ("h800", "h800"),
    ("h20", "h20"),
    ("a100", "a100-sxm-80gb"),
    ("l40s", "l40s"),
    ("b200", "b200"),
)


def gpu_card_for(name: str, path: Path, key: str) -> str:
    """The GPU card for a device name: a card of exactly that name on the card search path (the
    user's folders first), else the bundled card whose token the name contains."""
    for exact in dict.fromkeys((name, name.lower())):
        if find_card("GPU", exact) is not None:
            return exact
    tokens = re.split(r"[^a-z0-9]+", name.lower())
    for token_name, card in GPU_NAMES:
        if any(
            t == token_name or (t.startswith(token_name) and not t[len(token_name)].isdigit())
            for t in tokens
        ):
            return card
    raise InputError(str(path), key, f"GPU {name!r} matches no card; {known_cards_text('GPU')}")


def read_hardware(imp: Imported, path: Path, data: dict[str, Any]) -> str:
    """GPU card, node count and links from hardware_env.json; returns the cluster's name."""
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise InputError(str(path), "nodes", "a non-empty list of nodes is required")
    gpus_per_node, gpu_name, memories = _identical_nodes(path, nodes)
    card = gpu_card_for(gpu_name, path, "nodes[0].gpu_devices[0].gpu_name")
    first = nodes[0]["gpu_devices"][0]
    imp.put("hardware.gpu", card, key_origin(path, "nodes[0].gpu_devices[0].gpu_name", gpu_name))
    _memory_override(imp, path, card, memories)
    imp.put("hardware.num_nodes", len(nodes), f'{path.name}: {len(nodes)} entries in "nodes"')
    imp.put(
        "hardware.gpus_per_node",
        gpus_per_node,
        f'{path.name}: {gpus_per_node} entries in "nodes[0].gpu_devices"',
    )
    cluster = data.get("cluster", {}) if isinstance(data.get("cluster"), dict) else {}
    total = cluster.get("total_gpus")
    if total is not None and total != len(nodes) * gpus_per_node:
        raise InputError(
            str(path),
            "cluster.total_gpus",
            f"{total}, but the nodes list "
            f"{len(nodes)} x {gpus_per_node} = {len(nodes) * gpus_per_node} devices",
        )
    _links(imp, path, nodes[0], first)
    _ignored_keys(imp, path, nodes, first)
    return str(cluster.get("name") or path.parent.name)


def _identical_nodes(path: Path, nodes: list[Any]) -> tuple[int, str, set[Any]]:
    """(GPUs per node, GPU name, memory sizes stated) of nodes that must all be alike."""
    per_node, names, memories = set(), set(), set()
    for i, node in enumerate(nodes):
        devices = node.get("gpu_devices") if isinstance(node, dict) else None
        if not isinstance(devices, list) or not devices:
            raise InputError(
                str(path), f"nodes[{i}].gpu_devices", "a non-empty list of devices is required"
            )
        per_node.add(len(devices))
        for j, dev in enumerate(devices):
            if not isinstance(dev, dict) or "gpu_name" not in dev:
                raise InputError(str(path), f"nodes[{i}].gpu_devices[{j}].gpu_name", "missing")
            names.add(dev["gpu_name"])
            memories.add(dev.get("gpu_memory_gb"))
    if len(per_node) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices",
            f"nodes have different GPU counts {sorted(per_node)}; paraplan plans identical nodes",
        )
    if len(names) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices[].gpu_name",
            f"mixed GPU types {sorted(names)}; paraplan plans one GPU type",
        )
    return per_node.pop(), names.pop(), memories


def _ignored_keys(imp: Imported, path: Path, nodes: list[Any], first: dict[str, Any]) -> None:
    ignored = sorted(
        {
            k
            for n in nodes
            for k in n
            if k not in ("node_id", "gpu_devices", "intra_node_bw_gbps", "inter_node_bw_gbps")
        }
    )
    ignored += sorted(
        {
            f"gpu_devices[].{k}"
            for k in first
            if k not in ("device_id", "gpu_name", "gpu_memory_gb", "nvlink_bw_gbps", "pcie_bw_gbps")
        }
    )
    if ignored:
        imp.assumptions.append(
            f"{path.name}: ignored (no effect on GPU planning): {', '.join(ignored)}"
        )


def _memory_override(imp: Imported, path: Path, card: str, memories: set[Any]) -> None:
    from solver.inputs.condition import load_gpu_card

    if len(memories) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices[].gpu_memory_gb",
            f"different memory sizes {sorted(memories)}",
        )
    memory = memories.pop()
    gpu = load_gpu_card(card)
    if memory is None or memory == gpu.memory_gb:
        return
    if not isinstance(memory, int | float) or memory <= 0:
        raise InputError(
            str(path), "nodes[0].gpu_devices[0].gpu_memory_gb", f"{memory!r} is not a size in GB"
        )
    inline = gpu.model_dump(exclude_defaults=False)
    inline["memory_gb"] = float(memory)
    inline["name"] = f"{gpu.name}-{memory:g}gb"
    imp.put(
        "hardware.gpu",
        inline,
        key_origin(path, "nodes[0].gpu_devices[0].gpu_memory_gb", memory)
        + f" (card {card} with this memory)",
    )


def _links(imp: Imported, path: Path, node: dict[str, Any], device: dict[str, Any]) -> None:
    intra = node.get("intra_node_bw_gbps")
    if intra is not None:
        imp.put(
            "hardware.intra_node_gb_per_s",
            float(intra),
            key_origin(path, "nodes[0].intra_node_bw_gbps", intra)
            + " read as GB/s per GPU per direction",
        )
    elif device.get("nvlink_bw_gbps") is not None:
        nvlink = device["nvlink_bw_gbps"]
        imp.put(
            "hardware.intra_node_gb_per_s",
            nvlink / 2,
            key_origin(path, "nodes[0].gpu_devices[0].nvlink_bw_gbps", nvlink)
            + " / 2 (bidirectional)",
        )
    inter = node.get("inter_node_bw_gbps")
    if inter is not None:
        imp.put(
            "hardware.inter_node_gb_per_s",
            float(inter),
            key_origin(path, "nodes[0].inter_node_bw_gbps", inter) + " read as GB/s per GPU",
        )
    imp.assumptions.append(
        "hardware_env.json bandwidths (*_bw_gbps) read as GB/s: intra_node_bw_gbps as the per-GPU "
        "per-direction NVLink bandwidth, inter_node_bw_gbps as the per-GPU network bandwidth "
        "(if it is "
        "per node or in Gb/s, divide hardware.inter_node_gb_per_s by 8)"
    )
    recorded = {k: device[k] for k in ("nvlink_bw_gbps", "pcie_bw_gbps") if k in device}
    if recorded:
        imp.read_only.append(
            f"{path.name}: device links {recorded} recorded; the node-level figures are used"
        )
