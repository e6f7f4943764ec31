"""The Environment Condition section of a seed markdown file: GPUs, the GPU card, interconnects."""

from __future__ import annotations

import re

from solver.errors import InputError
from solver.importers import labels
from solver.importers.common import GB, TB_PER_S, TFLOPS, Imported, as_int, fraction, numbers_in, quantity
from solver.importers.seed_markdown_sections import Line, SectionReader

AMPLE_MAX_GPUS = 1024  # "Ample GPU resources, no limits": the planner chooses up to this many
DEFAULT_GPUS_PER_NODE = 8
DEFAULT_INTRA_NODE_GB_PER_S = 450.0  # NVLink-4 class, per GPU per direction
DEFAULT_INTER_NODE_GB_PER_S = 50.0  # one 400 Gb/s NIC per GPU


def read_environment(imp: Imported, r: SectionReader, compute_precision: str) -> None:
    """The Environment Condition section: GPU count, the GPU card (one stated rate, used as the
    dense `compute_precision` rate), utilizations and links."""
    _gpu_count(imp, r)
    _gpu_card(imp, r, compute_precision)
    _utilization(imp, r)
    _links(imp, r)
    r.finish()


def _gpu_count(imp: Imported, r: SectionReader) -> None:
    """A number of GPUs (and nodes of them), or 'ample, no limits': the planner chooses. The count
    may carry its node phrase ("32 GPUs, 8 per node", "4 nodes x 8 GPUs"), or the node size and
    the number of nodes may be lines of their own."""
    src = imp.source
    count, per_line, nodes_line = (r.meaning(labels.GPU_COUNT), r.meaning(labels.GPUS_PER_NODE),
                                   r.meaning(labels.NODE_COUNT))
    if count is None and nodes_line is None:
        raise InputError(
            src, "Environment Condition", "no GPUs/NPUs line (a number, or 'Ample ..., no limits')"
        )
    if count is not None and _ample(count.value):
        imp.put("hardware.max_gpus", AMPLE_MAX_GPUS,
                f"{r.origin(count)} -> the planner chooses up to {AMPLE_MAX_GPUS} GPUs")
        imp.assumptions.append(
            f"hardware.max_gpus = {AMPLE_MAX_GPUS}: 'ample GPUs, no limits' read as "
            f"'the planner chooses the count, up to {AMPLE_MAX_GPUS}'"
        )
        return
    stated = node_phrase(count.value, src, r.where(count)) if count is not None else (None, None,
                                                                                        None)
    total, per_node, nodes = stated
    if per_line is not None:
        per_node = r.integer(per_line)
    if nodes_line is not None:
        nodes = r.integer(nodes_line)
    where = count if count is not None else nodes_line
    assert where is not None
    _put_cluster(imp, r, where, total, per_node, nodes, per_line)


def _ample(value: str) -> bool:
    lowered = value.lower()
    return "ample" in lowered or "no limit" in lowered or "unlimited" in lowered


_GPU_WORD = r"(?:gpus?|npus?|cards?|accelerators?|devices?)"
_NODE_WORD = r"(?:nodes?|servers?|machines?|hosts?)"
_NODES_TIMES_GPUS = re.compile(rf"(\d+)\s*{_NODE_WORD}\s*(?:x|\*|×|of|with)\s*(\d+)")
_GPUS_TIMES_NODES = re.compile(rf"(\d+)\s*{_GPU_WORD}?\s*(?:x|\*|×)\s*(\d+)\s*{_NODE_WORD}")
_PER_NODE = re.compile(rf"(\d+)\s*{_GPU_WORD}?\s*(?:per|/|in each|on each|each|every|a)\s*"
                       rf"{_NODE_WORD}")
_NODES = re.compile(rf"(\d+)\s*{_NODE_WORD}\b")


def node_phrase(value: str, source: str, where: str) -> tuple[int | None, int | None, int | None]:
    """(total GPUs, GPUs per node, nodes) a count value states: "32", "32 GPUs, 8 per node",
    "4 nodes x 8 GPUs", "8 GPUs x 4 nodes", "32 GPUs on 4 nodes"; None for what it does not
    state."""
    text = " " + value.lower().replace(",", " ") + " "
    per_node = nodes = None
    if m := _NODES_TIMES_GPUS.search(text):
        nodes, per_node = int(m.group(1)), int(m.group(2))
    elif m := _GPUS_TIMES_NODES.search(text):
        per_node, nodes = int(m.group(1)), int(m.group(2))
    if m:
        text = text[:m.start()] + " " + text[m.end():]
    if per_node is None and (m := _PER_NODE.search(text)):
        per_node, text = int(m.group(1)), text[:m.start()] + " " + text[m.end():]
    if nodes is None and (m := _NODES.search(text)):
        nodes, text = int(m.group(1)), text[:m.start()] + " " + text[m.end():]
    rest = numbers_in(text)
    if len(rest) > 1:
        raise InputError(source, where, "expected a GPU count (and its nodes), found "
                         f"{len(rest)} other numbers ({', '.join(f'{n:g}' for n in rest)})")
    total = as_int(rest[0], source, where) if rest else None
    if total is None and nodes is None and per_node is None:
        raise InputError(source, where, "no GPU count found")
    if total is None and nodes is not None and per_node is not None:
        total = nodes * per_node
    if total is not None and nodes and per_node is None and total % nodes == 0:
        per_node = total // nodes
    return total, per_node, nodes


def _put_cluster(imp: Imported, r: SectionReader, where: Line, total: int | None,
                 per_node: int | None, nodes: int | None, per_line: Line | None) -> None:
    src = imp.source
    if total is None:
        if per_node is None or nodes is None:
            raise InputError(src, r.where(where), "a number of nodes needs the GPUs per node")
        total = per_node * nodes
    if per_node is not None:
        imp.put("hardware.gpus_per_node", per_node, r.origin(per_line or where))
    else:
        per_node = max(d for d in range(1, DEFAULT_GPUS_PER_NODE + 1) if total % d == 0)
        imp.assume("hardware.gpus_per_node", per_node,
                   f"not stated; nodes of {per_node} GPUs (the largest divisor of {total} up to "
                   f"{DEFAULT_GPUS_PER_NODE})")
    if total % per_node or (nodes is not None and nodes * per_node != total):
        raise InputError(src, r.where(where), f"{total} GPUs is not a whole number of "
                         f"{per_node}-GPU nodes" + (f" ({nodes} nodes stated)" if nodes else ""))
    imp.put("hardware.num_nodes", total // per_node,
            f"{r.origin(where)} -> {total} GPUs / {per_node} per node")


def _gpu_card(imp: Imported, r: SectionReader, compute_precision: str) -> None:
    src = imp.source
    card = "hardware.gpu"
    tflops = r.meaning(labels.COMPUTE)
    hbm = r.meaning(labels.MEMORY_BANDWIDTH)
    memory = r.meaning(labels.MEMORY_CAPACITY)
    missing = [
        n
        for n, v in (
            ("single-card computing power", tflops),
            ("single-card memory capacity", memory),
            ("memory bandwidth", hbm),
        )
        if v is None
    ]
    if missing:
        raise InputError(src, "Environment Condition", f"missing: {', '.join(missing)}")
    assert tflops is not None and memory is not None and hbm is not None
    tf = quantity(tflops.value, TFLOPS, src, r.where(tflops), default_unit="tflops")
    gb = quantity(memory.value, GB, src, r.where(memory), default_unit="gb")
    tb = quantity(hbm.value, TB_PER_S, src, r.where(hbm), default_unit="tbps")
    name = f"seed-card-{tf:g}tflops-{gb:g}gb"
    imp.put(f"{card}.name", name, "named by the importer from the card's numbers")
    imp.put(f"{card}.memory_gb", gb, r.origin(memory))
    imp.put(
        f"{card}.dense_tflops",
        {compute_precision: tf},
        f"{r.origin(tflops)} -> the dense {compute_precision} rate (the card states one rate)",
    )
    imp.put(f"{card}.hbm_tb_per_s", tb, r.origin(hbm))
    imp.assumptions.append(
        f"the stated {tf:g} TFLOPS is used as the dense {compute_precision} rate "
        "(the source gives one rate for every precision)"
    )


def _utilization(imp: Imported, r: SectionReader) -> None:
    src = imp.source
    mfu = r.meaning(labels.MFU)
    if mfu is not None:
        imp.put("hardware.mfu", fraction(mfu.value, src, r.where(mfu)), r.origin(mfu))
    mbu = r.meaning(labels.MBU)
    if mbu is not None:
        imp.put(
            "hardware.memory_bandwidth_utilization",
            fraction(mbu.value, src, r.where(mbu)),
            r.origin(mbu),
        )


def _links(imp: Imported, r: SectionReader) -> None:
    src = imp.source
    for key, label, default, what in (
        ("intra_node_gb_per_s", labels.INTRA_NODE, DEFAULT_INTRA_NODE_GB_PER_S,
         "NVLink-4 class, per GPU per direction"),
        ("inter_node_gb_per_s", labels.INTER_NODE, DEFAULT_INTER_NODE_GB_PER_S,
         "one 400 Gb/s NIC per GPU"),
    ):
        line = r.meaning(label)
        if line is not None:
            value = quantity(
                line.value,
                {
                    "gb/s": 1.0,
                    "gbps": 1.0,
                    "tb/s": 1000.0,
                    "tbps": 1000.0,
                    "gbit/s": 0.125,
                    "gb": 1.0,
                },
                src,
                r.where(line),
                default_unit="gb/s",
            )
            imp.put(f"hardware.{key}", value, r.origin(line))
        else:
            imp.assume(f"hardware.{key}", default, f"interconnect not stated; {what}")
