"""Precisions of a condition: weights, KV cache, activations, and the precision GEMMs run in.

Engines run an FP8 (or FP4) checkpoint's GEMMs in FP8 (FP4) where the GPU has the tensor-core
rate (vLLM, SGLang and TensorRT-LLM all do), so the compute precision follows the weights unless
the condition says otherwise (`precision.compute`). Without a rate for the weights' format the
GEMMs run one step up (FP4 weights on Hopper: FP8), else in the activations' precision. Attention
(FlashAttention, FlashMLA) runs in `precision.attention`, BF16 unless stated.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from solver.errors import InputError
from solver.inputs.cards import BYTES_PER_ELEMENT, GpuCard, Precision

STEP_UP = {"fp4": "fp8", "int4": "int8"}


class PrecisionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    weights: Precision = "bf16"
    kv_cache: Precision = "bf16"
    activations: Precision = Field(default="bf16", description="hidden states between GEMMs")
    compute: Precision | None = Field(
        default=None, description="precision of the GEMMs (default: the weights' when the GPU has "
        "that rate, as engines run FP8/FP4 checkpoints)")
    attention: Precision = Field(default="bf16", description="attention kernels' precision")


def compute_precision(precision: PrecisionSpec, gpu: GpuCard, gpu_ref: str, source: str) -> str:
    """The GEMMs' precision on this GPU (an error naming the key when the GPU has no such rate)."""
    for key in ("activations", "compute", "attention"):  # GEMM inputs and kernels need the rate
        value = getattr(precision, key)
        if value is not None and gpu.peak_flops(value) is None:
            have = ", ".join(sorted(gpu.dense_tflops))
            raise InputError(source, f"precision.{key}",
                             f"GPU '{gpu_ref}' has no {value} tensor-core rate (it lists: {have})")
    if precision.compute is not None:
        return precision.compute
    narrow = precision.weights
    if BYTES_PER_ELEMENT[narrow] >= BYTES_PER_ELEMENT[precision.activations]:
        narrow = precision.activations
    for option in (narrow, STEP_UP.get(narrow)):
        if option is not None and gpu.peak_flops(option) is not None:
            return option
    return precision.activations  # it has a rate (checked above)
