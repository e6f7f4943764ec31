"""MoE dispatch and combine as DeepEP runs them (the all-to-all of expert parallelism).

An EP group of `ranks` GPUs spans `nodes` nodes (ranks / nodes per node). A token goes to its k
experts; with group-limited routing (model card `n_group`, `topk_group`: experts in n_group equal
groups laid out in order over the ranks, each token's experts from at most topk_group groups, as
DeepSeek-V3 routes to at most 4 nodes) it reaches fewer nodes:

    R  = nodes the token's groups cover:  N (1 - prod_{i<topk_group} (n_group - n_group/N - i) /
         (n_group - i)) when a node holds whole groups (N <= n_group), topk_group N / n_group when
         a group spans nodes, N without a limit
    D  = distinct nodes the k experts hit:  R (1 - (1 - 1/R)^k)
    G  = distinct ranks they hit:           Rr (1 - (1 - 1/Rr)^k), Rr = R * ranks per node

Two kernel families (github.com/deepseek-ai/DeepEP, docs/legacy.md):

    normal (prefill)      one RDMA copy per token and distinct remote node, forwarded inside the
                          node over NVLink; RDMA and NVLink run at once:
                          t = max(T D (N-1)/N s / (e_rdma B_net), T G s (1 - 1/r) / (e_nvl B_nvl))
                          + alpha
    low-latency (decode)  one copy per token and expert (k copies, no deduplication), remote ones
                          over RDMA, same-node ones over NVLink:
                          t = t_ll + T k s max(remote / (e_ll B_net), local / (e_nvl B_nvl))

with T tokens per rank, s bytes per token row (dispatch: the activations, fp8 with one 4-byte scale
per 128 elements; combine: 16-bit hidden states), r ranks per node, B_net and B_nvl the card's
per-GPU network and NVLink rates. The four efficiencies are fitted once to DeepEP's published
H800 kernel tables (tests/assets/kernels/deepep_h800.csv; solver/calibration/kernels.py; the fit
is checked in tests/calibration/test_kernel_fits.py) and apply to every card: they describe the
kernels and the NIC/NVLink protocols, not one GPU.

Numbers may be arrays (one per candidate; physics/numeric.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.physics.numeric import Num, is_array, vmax, vmin, vwhere


@dataclass(frozen=True)
class DeepEPParameters:
    """Achieved fractions of the rated links, and the low-latency kernels' fixed time."""

    nvlink_efficiency: float  # normal and low-latency kernels over NVLink
    rdma_efficiency: float  # normal kernels over the network
    low_latency_rdma_efficiency: float  # low-latency kernels over the network
    low_latency_s: float  # fixed time of one low-latency dispatch or combine


# Fitted by solver/calibration/kernels.fit_deepep to DeepEP's published H800 tables (fit residuals:
# docs/accuracy.md, "Large-scale MoE serving"); tests/calibration/test_kernel_fits.py refits them.
DEEPEP = DeepEPParameters(nvlink_efficiency=0.68, rdma_efficiency=0.873,
                          low_latency_rdma_efficiency=0.83, low_latency_s=18.6e-6)


# The normal kernels run on SMs taken from compute (DeepEP's Buffer.set_num_sms(24) in its example;
# DeepSeek-V3 training used 20 of an H800's 132): compute that overlaps them runs on the rest.
# The low-latency kernels receive through a hook and hold no SMs while compute runs (DeepEP,
# "two-micro-batch overlapping ... without costing any GPU SMs").
NORMAL_KERNEL_SM_SHARE = 24 / 132


@dataclass(frozen=True)
class EpSpan:
    """An EP group of `ranks` ranks over `nodes` nodes (arrays on a grid)."""

    ranks: Num
    nodes: Num

    @classmethod
    def of(cls, ranks: Num, gpus_spanned: Num, gpus_per_node: int) -> EpSpan:
        """`gpus_spanned` consecutive GPUs hold the group (ep ranks etp apart: ep * etp)."""
        return cls(ranks, vmax(1.0, gpus_spanned / gpus_per_node))

    @property
    def ranks_per_node(self) -> Num:
        return self.ranks / self.nodes


@dataclass(frozen=True)
class Routing:
    """Top-k routing, optionally group-limited."""

    experts_per_token: int
    n_group: int | None = None
    topk_group: int | None = None

    def nodes_covered(self, nodes: Num) -> Num:
        """R: the expected nodes a token's allowed groups cover."""
        if self.n_group is None or self.topk_group is None:
            return nodes * 1.0
        g = self.n_group
        per_node = g / nodes  # groups per node (below 1: a group spans nodes)
        missed = 1.0
        for i in range(self.topk_group):
            missed = missed * vmax(0.0, (g - per_node - i) / (g - i))
        whole = nodes * (1.0 - missed)
        spread = vmin(nodes * 1.0, self.topk_group * nodes / g)
        return vwhere(per_node >= 1, whole, spread)

    @staticmethod
    def hit(bins: Num, draws: int) -> Num:
        """Expected distinct bins among `draws` uniform picks over `bins` bins."""
        return bins * (1.0 - (1.0 - 1.0 / bins) ** draws)

    def nodes_per_token(self, span: EpSpan) -> Num:
        """D: distinct nodes a token's experts sit on."""
        return self.hit(self.nodes_covered(span.nodes), self.experts_per_token)

    def ranks_per_token(self, span: EpSpan) -> Num:
        """G: distinct ranks a token's experts sit on."""
        reach = self.nodes_covered(span.nodes) * span.ranks_per_node
        return self.hit(reach, self.experts_per_token)


@dataclass(frozen=True)
class Links:
    """Rated per-GPU rates of the two links (bytes/s) and the collective latency (s)."""

    nvlink_bytes_per_s: float
    network_bytes_per_s: float
    alpha_s: float = 0.0


@dataclass(frozen=True)
class Exchange:
    """One dispatch or combine: its time and the bytes each link carries per GPU."""

    time_s: Num
    network_bytes: Num
    nvlink_bytes: Num


def normal_exchange(tokens_per_rank: Num, row_bytes: float, span: EpSpan, routing: Routing,
                    links: Links, params: DeepEPParameters = DEEPEP) -> Exchange:
    """The high-throughput kernel (prefill): per-node RDMA copies, NVLink forwarding."""
    remote = routing.nodes_per_token(span) * (span.nodes - 1) / span.nodes
    network = tokens_per_rank * remote * row_bytes
    nvlink = tokens_per_rank * routing.ranks_per_token(span) * row_bytes * (1 - 1 / span.ranks_per_node)
    time = vmax(network / (params.rdma_efficiency * links.network_bytes_per_s),
                nvlink / (params.nvlink_efficiency * links.nvlink_bytes_per_s))
    return Exchange(time + links.alpha_s, network, nvlink)


def low_latency_exchange(tokens_per_rank: Num, row_bytes: float, span: EpSpan, routing: Routing,
                         links: Links, params: DeepEPParameters = DEEPEP) -> Exchange:
    """The low-latency kernel (decode): one copy per token and expert, no forwarding."""
    copies = tokens_per_rank * routing.experts_per_token * row_bytes
    local = 1 / span.nodes  # share of a token's experts in its own node (uniform over the ranks)
    network, nvlink = copies * (1 - local), copies * local
    time = vmax(network / (params.low_latency_rdma_efficiency * links.network_bytes_per_s),
                nvlink / (params.nvlink_efficiency * links.nvlink_bytes_per_s))
    return Exchange(time + params.low_latency_s, network, nvlink)


def dispatch_row_bytes(hidden_size: int, bytes_per_element: float) -> float:
    """A token row as dispatched: fp8 (and narrower) carries one fp32 scale per 128 elements."""
    scales = hidden_size / 128 * 4 if bytes_per_element < 2 else 0.0
    return hidden_size * bytes_per_element + scales


def exchange(tokens_per_rank: Num, row_bytes: float, span: EpSpan, routing: Routing, links: Links,
             low_latency: Num, params: DeepEPParameters = DEEPEP) -> Exchange:
    """The kernel a step uses: low-latency where `low_latency` holds (decode-only steps)."""
    fast = low_latency_exchange(tokens_per_rank, row_bytes, span, routing, links, params)
    bulk = normal_exchange(tokens_per_rank, row_bytes, span, routing, links, params)
    if not is_array(low_latency):
        chosen = fast if low_latency else bulk
        return chosen
    pick = np.asarray(low_latency)
    return Exchange(*(np.where(pick, getattr(fast, f), getattr(bulk, f))
                      for f in ("time_s", "network_bytes", "nvlink_bytes")))
