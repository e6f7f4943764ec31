"""Grouped-GEMM efficiency of a per-GPU expert slice (the routed experts' FP8 GEMMs).

The cards' mfu is calibrated on dense layers, whose GEMMs are deep (K >= the hidden size) and tall.
An expert slice on one GPU is neither when experts are split finely (expert-TP) or receive few
tokens, and a GPU pays for that:

    depth     each output tile runs K / BLOCK_K main-loop steps plus a fixed prologue and epilogue
              (pipeline fill, the BF16 output written back): the tensor-core time scales as
              (K + K0) / K. Relative to the dense GEMMs the mfu was fitted on (K = hidden size):
              factor(K) = (1 + K0 / K) / (1 + K0 / hidden)
    rows      a group's rows are padded to the tensor-core tile, so an expert with m tokens costs
              ceil(m / tile) * tile rows of math: 64 on Hopper and Blackwell (a warpgroup MMA,
              wgmma / tcgen05, has M >= 64), 16 on earlier GPUs (mma.sync m16)

K0 is fitted once to DeepGEMM's published H800 table (docs/calibration/kernels/deepgemm_h800.csv,
solver/calibration/kernels.fit_gemm_depth; 720): the normal GEMMs at M = 4096 with K from 512 to
16384 lose 55% of their rate at K = 512 and 21% at K = 2048, one K0 explaining both. The K0 / K
term carries the write-back of the BF16 output tile too, which scales the same way (2 m n bytes
per 2 m n k FLOPs), so the cost model streams only the weights. An expert's gate and
up projections have K = hidden (factor 1); its down projection has K = the slice width
(moe_intermediate_size / etp): DeepSeek-V3's 2048-wide experts at etp 8 are 256 deep, 3.5x slower
per FLOP than a hidden-deep GEMM.
"""

from __future__ import annotations

import numpy as np

from solver.physics.numeric import Num, is_array

GEMM_DEPTH_K0 = 720.0  # fitted (see the module doc); tests/calibration/test_kernel_fits.py refits it
TILE_ROWS = 64  # Hopper wgmma / Blackwell tcgen05: the smallest M of one warpgroup MMA
TILE_ROWS_MMA_SYNC = 16  # Ampere, Ada and other cards: mma.sync m16n8k16
WARPGROUP_MMA_ARCHITECTURES = ("hopper", "blackwell")


def tile_rows(architecture: str) -> int:
    """The smallest row tile of a GPU's tensor-core MMA (card `architecture`)."""
    return TILE_ROWS if architecture in WARPGROUP_MMA_ARCHITECTURES else TILE_ROWS_MMA_SYNC


def depth_factor(k: Num, reference_k: float) -> Num:
    """Tensor-core time per FLOP of a K-deep GEMM relative to a `reference_k`-deep one."""
    return (1 + GEMM_DEPTH_K0 / k) / (1 + GEMM_DEPTH_K0 / reference_k)


def padded_rows(rows: Num, tile: int = TILE_ROWS) -> Num:
    """Rows of math a group of `rows` tokens costs (0 stays 0)."""
    tiles = np.ceil(rows / tile) if is_array(rows) else float(np.ceil(rows / tile))
    return tiles * tile


def expert_math_factor(tokens_per_expert: Num, touched: Num, slice_width: Num,
                       hidden_size: int, tile: int = TILE_ROWS) -> Num:
    """Time of an expert slice's math relative to the calibrated dense rate. `tokens_per_expert`
    is the mean over the local experts, `touched` the chance one receives any token: a touched
    expert computes its tokens padded to the tile. Row padding applies to all three projections,
    depth to the down projection (1/3 of the FLOPs)."""
    touched = np.maximum(touched, 1e-12) if is_array(touched) else max(touched, 1e-12)
    given = tokens_per_expert / touched  # tokens of an expert that is touched (at least one)
    given = np.maximum(given, 1.0) if is_array(given) else max(given, 1.0)
    padding = padded_rows(given, tile) / given
    return padding * (2 + depth_factor(slice_width, hidden_size)) / 3


def projections_factor(gemms: tuple[tuple[int, int, bool], ...], tp: Num, hidden_size: int) -> Num:
    """FLOP-weighted depth factor of a block's GEMMs, each (weights, K, K split by tp)."""
    total = sum(w for w, _, _ in gemms)
    return sum(w * depth_factor(k / tp if split else k, hidden_size)
               for w, k, split in gemms) / total


def swiglu_factor(width: Num, hidden_size: int) -> Num:
    """An FFN of gate, up (K = hidden) and down (K = its f-wide input, as split) projections
    (no FFN: 1)."""
    width = np.maximum(width, 1.0) if is_array(width) else max(width, 1.0)
    return (2 + depth_factor(width, hidden_size)) / 3
