"""Kernel-level fits, kept apart from the end-to-end calibration: DeepEP's dispatch/combine
kernels (physics/moe_comm.py) and DeepGEMM's FP8 GEMMs (physics/gemm.py), each against its own
published H800 table in docs/calibration/kernels/.

The fits are small and deterministic (coarse-to-fine grid search on the sum of squared log errors);
the planner uses the constants written in the physics modules, and
tests/calibration/test_kernel_fits.py checks that refitting gives them back.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from solver.inputs.cards import BYTES_PER_ELEMENT
from solver.physics.moe_comm import (
    DeepEPParameters,
    EpSpan,
    Links,
    Routing,
    dispatch_row_bytes,
    low_latency_exchange,
    normal_exchange,
)

KERNEL_DATA = Path(__file__).resolve().parents[2] / "docs" / "calibration" / "kernels"
H800_LINKS = Links(nvlink_bytes_per_s=200e9, network_bytes_per_s=50e9)  # conditions/hardware/h800.yaml
H800_GPUS_PER_NODE = 8


def read_rows(name: str) -> list[dict[str, str]]:
    """A kernel table (comment lines start with '#')."""
    with open(KERNEL_DATA / name, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


# ---- DeepEP -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeepEPRow:
    kernel: str
    op: str
    ep: int
    tokens_per_rank: int
    hidden: int
    topk: int
    topk_groups: int | None
    precision: str
    latency_us: float | None
    bandwidth_gb_s: float

    @classmethod
    def of(cls, r: dict[str, str]) -> DeepEPRow:
        return cls(r["kernel"], r["op"], int(r["ep"]), int(r["tokens_per_rank"]), int(r["hidden"]),
                   int(r["topk"]), int(r["topk_groups"]) if r["topk_groups"] else None,
                   r["precision"], float(r["latency_us"]) if r["latency_us"] else None,
                   float(r["bandwidth_gb_s"]))

    @property
    def span(self) -> EpSpan:
        return EpSpan.of(self.ep, self.ep, H800_GPUS_PER_NODE)

    @property
    def routing(self) -> Routing:
        """DeepEP's tests route over groups = nodes, top-min(4, nodes) of them."""
        nodes = int(self.span.nodes)
        groups = self.topk_groups
        return Routing(self.topk, nodes if groups else None, groups)

    @property
    def row_bytes(self) -> float:
        return dispatch_row_bytes(self.hidden, BYTES_PER_ELEMENT[self.precision])


def deepep_rows() -> list[DeepEPRow]:
    return [DeepEPRow.of(r) for r in read_rows("deepep_h800.csv")]


def predict_deepep(row: DeepEPRow, params: DeepEPParameters) -> float:
    """The row's published metric as the model predicts it: the latency (us) of a low-latency
    row, the bottleneck bandwidth (GB/s, DeepEP's definition) of a normal one."""
    span, routing, s = row.span, row.routing, row.row_bytes
    if row.kernel == "low_latency":
        return low_latency_exchange(row.tokens_per_rank, s, span, routing, H800_LINKS, params).time_s * 1e6
    time = normal_exchange(row.tokens_per_rank, s, span, routing, H800_LINKS, params).time_s
    per_token = routing.ranks_per_token(span) if span.nodes == 1 else routing.nodes_per_token(span)
    return row.tokens_per_rank * per_token * s / time / 1e9


def measured_deepep(row: DeepEPRow) -> float:
    return row.latency_us if row.kernel == "low_latency" and row.latency_us else row.bandwidth_gb_s


def _search(loss: Callable[[tuple[float, ...]], float], grids: Sequence[Sequence[float]],
            rounds: int = 3) -> tuple[float, ...]:
    """Coarse-to-fine grid search: each round narrows every axis around the best point."""
    best = min(itertools.product(*grids), key=loss)
    for _ in range(rounds):
        steps = [(g[-1] - g[0]) / (len(g) - 1) for g in grids]
        grids = [[b + step * i / 5 for i in range(-5, 6) if b + step * i / 5 > 0]
                 for b, step in zip(best, steps, strict=True)]
        best = min(itertools.product(*grids), key=loss)
    return best


def _log_loss(rows: Sequence[DeepEPRow], params: Callable[[tuple[float, ...]], DeepEPParameters],
              ) -> Callable[[tuple[float, ...]], float]:
    return lambda x: sum(math.log(predict_deepep(r, params(x)) / measured_deepep(r)) ** 2 for r in rows)


def fit_deepep(rows: Sequence[DeepEPRow] | None = None) -> DeepEPParameters:
    """NVLink efficiency from the intranode rows, then the normal kernels' RDMA efficiency from
    the internode rows, then the low-latency kernels' fixed time and RDMA efficiency."""
    rows = list(rows or deepep_rows())
    intra = [r for r in rows if r.kernel == "normal" and r.ep <= H800_GPUS_PER_NODE]
    inter = [r for r in rows if r.kernel == "normal" and r.ep > H800_GPUS_PER_NODE]
    fast = [r for r in rows if r.kernel == "low_latency"]
    fractions = [i / 20 for i in range(2, 21)]
    (nvl,) = _search(_log_loss(intra, lambda x: DeepEPParameters(x[0], 1, 1, 0)), [fractions])
    (rdma,) = _search(_log_loss(inter, lambda x: DeepEPParameters(nvl, x[0], 1, 0)), [fractions])
    ll_rdma, ll_s = _search(_log_loss(fast, lambda x: DeepEPParameters(nvl, rdma, x[0], x[1] * 1e-6)),
                            [fractions, [float(u) for u in range(0, 101, 10)]])
    return DeepEPParameters(round(nvl, 3), round(rdma, 3), round(ll_rdma, 3), round(ll_s, 1) * 1e-6)


# ---- DeepGEMM -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GemmRow:
    layout: str
    groups: int
    m: int
    n: int
    k: int
    tflops: float

    @classmethod
    def of(cls, r: dict[str, str]) -> GemmRow:
        return cls(r["layout"], int(r["groups"]), int(r["m"]), int(r["n"]), int(r["k"]),
                   float(r["tflops"]))


def gemm_rows() -> list[GemmRow]:
    return [GemmRow.of(r) for r in read_rows("deepgemm_h800.csv")]


def predict_gemm_tflops(row: GemmRow, k0: float, peak_flops_per_s: float,
                        hbm_bytes_per_s: float) -> float:
    """FP8 GEMM rate as the cost model prices an expert GEMM: math at the depth-corrected rate
    (whose K0 / K term carries the output tile's write-back and epilogue, which scale like it:
    2 m n bytes per 2 m n k FLOPs), then the weights streamed, one after the other."""
    flops = 2.0 * row.groups * row.m * row.n * row.k
    rows = math.ceil(row.m / 64) * 64
    math_s = 2.0 * row.groups * rows * row.n * row.k * (1 + k0 / row.k) / peak_flops_per_s
    stream_bytes = row.groups * row.n * row.k
    return flops / (math_s + stream_bytes / hbm_bytes_per_s) / 1e12


def fit_gemm_depth(rows: Sequence[GemmRow] | None = None,
                   hbm_bytes_per_s: float = 3.352e12 * 0.8) -> tuple[float, float]:
    """K0 and the deep-GEMM tensor-core rate (FLOP/s, the kernel-level counterpart of peak x mfu)
    from the compute-bound rows (M >= 1024 per group); the HBM rate is the card's at the default
    utilization."""
    rows = [r for r in (rows or gemm_rows()) if r.m >= 1024]

    def loss(x: tuple[float, ...]) -> float:
        return sum(math.log(predict_gemm_tflops(r, x[0], x[1] * 1e12, hbm_bytes_per_s) / r.tflops) ** 2
                   for r in rows)

    k0, rate = _search(loss, [[float(v) for v in range(0, 2001, 100)],
                              [float(v) for v in range(1000, 1981, 40)]])
    return round(k0, -1), rate * 1e12


# ---- memory-bound passes (DeepSeek's forward trace) ----------------------------------------------
TRACE_TOKENS_PER_GPU = 4096  # one 4K sequence per GPU per micro-batch
TRACE_EP = 64


def forward_trace_rows() -> dict[str, float]:
    """Measured microseconds per layer of the checked kernel classes (deepseek_v3_forward_h800.csv)."""
    return {r["class"]: float(r["measured_us"]) for r in read_rows("deepseek_v3_forward_h800.csv")
            if r["kind"] == "checked"}


def fit_pass_rate() -> float:
    """physics/passes.PASS_RATE: the trace's four kernel classes together, predicted at the card's
    streaming rate over measured (two decimals)."""
    measured, predicted = forward_trace_rows(), predict_forward_passes_us(pass_rate=1.0)
    return round(sum(predicted.values()) / sum(measured.values()), 2)


def predict_forward_passes_us(pass_rate: float | None = None) -> dict[str, float]:
    """physics/passes.py's bytes for one layer of the trace (DeepSeek-V3 FP8 on H800, EP64 over 8
    nodes, attention data-parallel, 4,096 tokens per GPU, balanced routing: 4,096 x 8 rows per GPU)
    at `pass_rate` (default: the planner's PASS_RATE) of the H800 card's HBM rate, per kernel class
    of the trace."""
    from solver.inputs.condition import build_condition
    from solver.physics.cost import CostModel
    from solver.physics.passes import NORM_PASSES, PASS_RATE, routed_row_pieces, shared_expert_bytes
    from solver.physics.shapes import ParallelShape

    condition = build_condition({
        "model": "deepseek-v3", "precision": {"weights": "fp8", "kv_cache": "bf16", "activations": "fp8"},
        "hardware": {"gpu": "h800", "num_nodes": TRACE_EP // H800_GPUS_PER_NODE},
        "workload": {"input_tokens": TRACE_TOKENS_PER_GPU, "output_tokens": 1, "batch_size": 1},
        "serving": {"mode": "static"}}, "trace.yaml", "trace")
    model = CostModel(condition)
    shape = ParallelShape(tp=1, attn_dp=TRACE_EP, ep=TRACE_EP, etp=1)
    card, tokens = condition.model, float(TRACE_TOKENS_PER_GPU)
    rows = tokens * card.num_experts_per_tok
    row = routed_row_pieces(model, shape, dispatch_row_bytes(card.hidden_size, model.act_bytes_per_element))
    token_row = card.hidden_size * model.hidden_bytes_per_element
    bytes_ = {"norm": tokens * NORM_PASSES * token_row,
              "permute": rows * row["permute"],
              "activation": rows * row["activation"] + tokens * shared_expert_bytes(model, shape),
              "weighted_sum": rows * row["weighted_sum"] + tokens * token_row}
    rate = model.hw.hbm_bytes_per_s * (PASS_RATE if pass_rate is None else pass_rate)
    return {name: float(b) / rate * 1e6 for name, b in bytes_.items()}
