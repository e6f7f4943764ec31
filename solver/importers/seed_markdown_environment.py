"""The Environment Condition section of a seed markdown file: GPUs, the GPU card, interconnects."""

from __future__ import annotations

from solver.errors import InputError
from solver.importers.common import GB, TB_PER_S, TFLOPS, Imported, fraction, quantity
from solver.importers.seed_markdown_sections import SectionReader

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
    """A number of GPUs (and nodes of them), or 'ample, no limits': the planner chooses."""
    src = imp.source
    count = r.find(
        r"^(gpus?|npus?|cards?|accelerators?|devices?)( count| number)?$",
        r"number of (gpus|npus|cards)",
    )
    if count is None:
        raise InputError(
            src, "Environment Condition", "no GPUs/NPUs line (a number, or 'Ample ..., no limits')"
        )
    lowered = count.value.lower()
    if "ample" in lowered or "no limit" in lowered or "unlimited" in lowered:
        imp.put(
            "hardware.max_gpus",
            AMPLE_MAX_GPUS,
            f"{r.origin(count)} -> the planner chooses up to {AMPLE_MAX_GPUS} GPUs",
        )
        imp.assumptions.append(
            f"hardware.max_gpus = {AMPLE_MAX_GPUS}: 'ample GPUs, no limits' read as "
            f"'the planner chooses the count, up to {AMPLE_MAX_GPUS}'"
        )
    else:
        total = r.integer(count)
        per_node_line = r.find(r"(gpus|npus|cards) per (node|server|machine)")
        if per_node_line is not None:
            per_node = r.integer(per_node_line)
            imp.put("hardware.gpus_per_node", per_node, r.origin(per_node_line))
        else:
            per_node = max(d for d in range(1, DEFAULT_GPUS_PER_NODE + 1) if total % d == 0)
            imp.assume(
                "hardware.gpus_per_node",
                per_node,
                f"not stated; nodes of {per_node} GPUs (the largest divisor of {total} up to "
                f"{DEFAULT_GPUS_PER_NODE})",
            )
        if total % per_node:
            raise InputError(
                src, r.where(count), f"{total} GPUs is not a whole number of {per_node}-GPU nodes"
            )
        imp.put(
            "hardware.num_nodes",
            total // per_node,
            f"{r.origin(count)} -> {total} GPUs / {per_node} per node",
        )


def _gpu_card(imp: Imported, r: SectionReader, compute_precision: str) -> None:
    src = imp.source
    card = "hardware.gpu"
    tflops = r.find(r"computing power", r"tflops", r"compute")
    memory = r.find(
        r"memory capacity", r"video memory", r"vram capacity", r"hbm capacity", r"^memory$"
    )
    hbm = r.find(r"(vram|memory|hbm) bandwidth$", r"^(vram|hbm) bw$")
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
    mfu = r.find(r"\bmfu\b", r"compute utili[sz]ation")
    if mfu is not None:
        imp.put("hardware.mfu", fraction(mfu.value, src, r.where(mfu)), r.origin(mfu))
    mbu = r.find(r"bandwidth utili[sz]ation", r"\bmbu\b")
    if mbu is not None:
        imp.put(
            "hardware.memory_bandwidth_utilization",
            fraction(mbu.value, src, r.where(mbu)),
            r.origin(mbu),
        )


def _links(imp: Imported, r: SectionReader) -> None:
    src = imp.source
    for key, patterns, default, what in (
        (
            "intra_node_gb_per_s",
            (r"intra.?node", r"nvlink", r"\bhccs\b", r"scale.?up"),
            DEFAULT_INTRA_NODE_GB_PER_S,
            "NVLink-4 class, per GPU per direction",
        ),
        (
            "inter_node_gb_per_s",
            (r"inter.?node", r"network", r"\brdma\b", r"scale.?out"),
            DEFAULT_INTER_NODE_GB_PER_S,
            "one 400 Gb/s NIC per GPU",
        ),
    ):
        line = r.find(*patterns)
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
