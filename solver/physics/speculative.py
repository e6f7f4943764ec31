"""Speculative decoding with the model's multi-token-prediction (MTP) modules as the draft.

With `workload.speculative: {draft_tokens: d, acceptance_rate: a}` every decode step

    verifies d + 1 positions per sequence     the target model's GEMMs, MoE and LM head run on
                                              (d + 1) tokens per sequence; attention runs d + 1
                                              queries over the sequence's KV, read once
    drafts d tokens                           d passes of the MTP module (one transformer layer of
                                              the model's last kind, its 2h x h projection and the
                                              shared LM head) on one position per sequence
    accepts sum_{i=0..d} a^i tokens           the expected accepted drafts, each accepted only if
                                              the ones before it were, plus the verified token

so a request of O output tokens takes (O - 1) / tau decode steps (tau = accepted per step); TPOT is
the step time / tau. DeepSeek-V3 (one MTP module, d = 1) reports 85-90% acceptance and ~1.8x the
tokens per second (arXiv 2412.19437, sec. 5.4.3). The MTP module sits on the last pipeline stage
with its weights and its own KV cache: one more layer of the last kind for every sequence (as
SGLang's and vLLM's draft workers allocate it; one layer beside DeepSeek-V3's 61).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING

from solver.physics.collectives import PhaseCost
from solver.physics.numeric import Num
from solver.physics.serving import StepMix
from solver.physics.shapes import ParallelShape

if TYPE_CHECKING:
    from solver.inputs.condition import Condition
    from solver.physics.cost import CostModel
    from solver.physics.serving import ServingPoint


def accepted_tokens_per_step(draft_tokens: int, acceptance_rate: float) -> float:
    """tau = sum_{i=0..d} a^i: the verified token plus the expected accepted drafts."""
    return sum(acceptance_rate ** i for i in range(draft_tokens + 1))


def tokens_per_step(condition: Condition) -> float:
    spec = condition.workload.speculative
    return 1.0 if spec is None else accepted_tokens_per_step(spec.draft_tokens, spec.acceptance_rate)


def verified_positions(condition: Condition) -> int:
    spec = condition.workload.speculative
    return 1 if spec is None else spec.draft_tokens + 1


def _times(cost: PhaseCost, factor: float) -> PhaseCost:
    return PhaseCost(*(getattr(cost, f.name) * factor for f in fields(cost)))


def draft_cost(model: CostModel, shape: ParallelShape, mix: StepMix) -> PhaseCost:
    """The MTP drafts of one decode step (on the last stage): nothing without speculation."""
    spec = model.condition.workload.speculative
    if spec is None or mix.decode_positions == 1:
        return PhaseCost()
    one = replace(mix, decode_positions=1, prefill_tokens=0.0 * mix.prefill_tokens,
                  prefill_seqs=0.0 * mix.prefill_seqs)
    layer = model.layer_step(model.arch.layer_kinds[-1], shape, one)
    h = model.condition.model.hidden_size
    rows = model.per_group(mix.decode_seqs, shape, mix)
    params = 2 * h * h  # the projection of [hidden; next embedding] back to hidden
    projection = model.op(2 * rows * params / shape.tp, params * model.weight_bytes_per_element / shape.tp)
    drafts = _times(layer + projection + model.head(shape, one), spec.draft_tokens)
    return drafts.where(mix.decode_seqs > 0)


def mtp_kv_bytes(model: CostModel, shape: ParallelShape, point: ServingPoint) -> Num:
    """The MTP module's KV cache at this serving point (a layer of the last kind) when drafting."""
    if model.condition.workload.speculative is None:
        return 0.0
    return model.memory.kv_bytes(model.arch.layer_kinds[-1], shape, point)


def mtp_weight_bytes(model: CostModel, shape: ParallelShape) -> Num:
    """The MTP module's own weights (a layer of the last kind and the projection) when drafting."""
    if model.condition.workload.speculative is None:
        return 0.0
    kind = model.arch.layer_kinds[-1]
    h = model.condition.model.hidden_size
    projection = 2 * h * h * model.weight_bytes_per_element / shape.tp
    return model.memory.layer_weight_bytes(kind, shape) + projection
