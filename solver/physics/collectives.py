"""Data movement between GPUs: links and collectives (alpha-beta model), and the cost unit.

A PhaseCost is one layer (or extra) in one step: compute and communication time, bytes moved.
A group uses the intra-node link when its consecutive ranks sit in one node, the per-GPU network
otherwise; alpha is the fixed latency of one collective step. All-reduce, as engines run it:

    NVLink/NVSwitch, one node   the faster of one-shot (every rank reads its peers' buffers:
                                alpha + (n-1) S / bw) and two-shot (reduce-scatter + all-gather
                                through peer memory: 2 alpha + 2 (n-1)/n S / bw): nearly flat in n
                                for the small messages of decode (vLLM's and TensorRT-LLM's custom
                                all-reduce, NCCL's NVLS)
    PCIe, one node              NCCL's ring: 2 (n-1)/n S / bw + 2 (n-1) alpha
    across nodes                NCCL's tree/ring: 2 (n-1)/n S / bw + 2 ceil(log2 n) alpha

Numbers may be arrays (one per candidate; physics/numeric.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from solver.physics.numeric import Num, ceil_log2, is_array, vmin, vwhere
from solver.physics.shapes import group_within_node


@dataclass(frozen=True)
class PhaseCost:
    """One layer (or extra) in one phase: compute and communication time, bytes moved."""

    compute_s: float = 0.0
    comm_s: float = 0.0
    comm_bytes: float = 0.0
    flops: float = 0.0
    hbm_bytes: float = 0.0

    @property
    def time_s(self) -> float:
        return self.compute_s + self.comm_s

    def __add__(self, other: PhaseCost) -> PhaseCost:
        return PhaseCost(
            self.compute_s + other.compute_s,
            self.comm_s + other.comm_s,
            self.comm_bytes + other.comm_bytes,
            self.flops + other.flops,
            self.hbm_bytes + other.hbm_bytes,
        )

    def where(self, condition: Num) -> PhaseCost:
        """This cost where `condition` holds, nothing elsewhere (per candidate on a grid)."""
        if not is_array(condition):
            return self if condition else PhaseCost()
        return PhaseCost(*(np.where(condition, getattr(self, f.name), 0.0) for f in fields(self)))


@dataclass(frozen=True)
class Hardware:
    """Achievable rates of one GPU and its links (calibrated fractions applied)."""

    flops_per_s: float
    attention_flops_per_s: float
    hbm_bytes_per_s: float
    intra_bytes_per_s: float
    inter_bytes_per_s: float
    alpha_s: float
    gpus_per_node: int
    nvlink: bool = True  # the intra-node link is NVLink/NVSwitch (False: PCIe)


class Network:
    """Collectives over the links of a cluster."""

    def __init__(self, hw: Hardware) -> None:
        self.hw = hw

    def link_bytes_per_s(self, group_size: Num) -> Num:
        within = group_within_node(group_size, self.hw.gpus_per_node)
        return vwhere(within, self.hw.intra_bytes_per_s, self.hw.inter_bytes_per_s)

    def all_reduce(self, size_bytes: Num, ranks: Num, span: Num = None) -> PhaseCost:
        """All-reduce of `size_bytes` over `ranks` (see the module doc); `span` = consecutive ranks
        the group covers (strided groups)."""
        moved = 2 * (ranks - 1) / ranks * size_bytes
        within = group_within_node(ranks if span is None else span, self.hw.gpus_per_node)
        alpha = self.hw.alpha_s
        intra, inter = self.hw.intra_bytes_per_s, self.hw.inter_bytes_per_s
        if self.hw.nvlink:
            local = vmin(alpha + (ranks - 1) * size_bytes / intra, 2 * alpha + moved / intra)
        else:
            local = moved / intra + 2 * (ranks - 1) * alpha
        across = moved / inter + 2 * ceil_log2(ranks) * alpha
        time = vwhere(within, local, across)
        return PhaseCost(comm_s=time, comm_bytes=moved).where((ranks > 1) & (size_bytes > 0))

    def all_to_all(self, size_bytes: Num, ranks: Num, span: Num = None) -> PhaseCost:
        """`size_bytes` is what one rank holds before the exchange; (n-1)/n of it leaves."""
        moved = (ranks - 1) / ranks * size_bytes
        # every rank sends to all peers concurrently: latency grows like log2(n), not n
        hops = ceil_log2(ranks)
        time = moved / self.link_bytes_per_s(ranks if span is None else span) + hops * self.hw.alpha_s
        return PhaseCost(comm_s=time, comm_bytes=moved).where((ranks > 1) & (size_bytes > 0))

    def all_gather(self, size_bytes: Num, ranks: Num) -> PhaseCost:
        """Every rank ends with `size_bytes` (the gathered total)."""
        moved = (ranks - 1) / ranks * size_bytes
        time = moved / self.link_bytes_per_s(ranks) + (ranks - 1) * self.hw.alpha_s
        return PhaseCost(comm_s=time, comm_bytes=moved).where((ranks > 1) & (size_bytes > 0))

    def point_to_point(self, size_bytes: Num, crosses_node: Num) -> PhaseCost:
        bw = vwhere(crosses_node, self.hw.inter_bytes_per_s, self.hw.intra_bytes_per_s)
        return PhaseCost(comm_s=size_bytes / bw + self.hw.alpha_s,
                         comm_bytes=size_bytes).where(size_bytes > 0)

