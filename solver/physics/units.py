"""One engine step of a prefill-only or a decode-only serving unit (disaggregated serving).

A prefill unit runs forward passes of prompt tokens only; a decode unit runs decode steps of its
sequences only, with no prefill interference. Each function prices one step of one replica
(pp = 1: every layer on every GPU of the unit) with the shared cost model (cost.py: DeepEP
all-to-all, two-batch overlap, grouped-GEMM efficiency, speculative decoding) and returns the
unit's throughput:

    decode   sequences S = sequences_per_gpu x GPUs, each at `context_tokens` of KV, verifying
             drafts + 1 positions when the condition decodes speculatively;
             output tokens/s = S tau / step time  (tau = accepted tokens per step)
    prefill  T = tokens_per_gpu x GPUs new prompt tokens in prompts of `prompt_tokens`, of which
             `cached_tokens` per prompt come from a prefix cache: the cached tokens are not computed,
             but the new ones attend to them (c n query-key pairs per prompt, their KV read once);
             input tokens/s (cached included) = prompts x prompt_tokens / step time

Expert placement: `slots_per_gpu` and `imbalance` (ExpertLayout) as the unit deploys them, e.g.
(256 + 32 redundant) / EP with EPLB's balance.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.inputs.condition import Condition
from solver.physics.collectives import PhaseCost
from solver.physics.cost import CostModel, ExpertLayout
from solver.physics.serving import StepMix
from solver.physics.shapes import ParallelShape
from solver.physics.speculative import tokens_per_step, verified_positions


@dataclass(frozen=True)
class UnitStep:
    """One step of a serving unit and the throughput it implies."""

    step_s: float
    tokens: float  # scored tokens per step (output tokens of a decode step, input of a prefill)
    gpus: int
    gpus_per_node: int
    comm_exposed_s: float = 0.0  # communication left on the step's critical path

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.step_s

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_s / self.gpus

    @property
    def tokens_per_s_per_node(self) -> float:
        return self.tokens_per_s_per_gpu * self.gpus_per_node


def _model(condition: Condition, shape: ParallelShape, layout: ExpertLayout | None) -> CostModel:
    if shape.pp != 1:
        raise ValueError("a serving unit step is priced with pp = 1")
    return CostModel(condition, {shape.ep: layout} if layout else None)


def _step(model: CostModel, shape: ParallelShape, mix: StepMix,
          extra: PhaseCost | None = None) -> PhaseCost:
    total = model.embedding(shape, mix) + model.head(shape, mix)
    for kind in model.arch.layer_kinds:
        total = total + model.layer_step(kind, shape, mix) + (extra or PhaseCost())
    return total


def decode_only_step(condition: Condition, shape: ParallelShape, sequences_per_gpu: float,
                     context_tokens: float, layout: ExpertLayout | None = None) -> UnitStep:
    """A decode step of `sequences_per_gpu` x GPUs sequences at `context_tokens` of context."""
    model = _model(condition, shape, layout)
    sequences = sequences_per_gpu * shape.gpus_per_replica
    mix = StepMix(sequences, context_tokens, 0.0, 0.0, condition.workload.input_tokens,
                  decode_positions=verified_positions(condition))
    cost = _step(model, shape, mix)
    return UnitStep(cost.time_s, sequences * tokens_per_step(condition), shape.gpus_per_replica,
                    condition.cluster.gpus_per_node, cost.comm_s)


def prefill_only_step(condition: Condition, shape: ParallelShape, tokens_per_gpu: float,
                      prompt_tokens: int, cached_tokens: int = 0,
                      layout: ExpertLayout | None = None) -> UnitStep:
    """A prefill step of `tokens_per_gpu` x GPUs new tokens, prompts of `prompt_tokens` of which
    `cached_tokens` are a cached prefix."""
    model = _model(condition, shape, layout)
    new_per_prompt = prompt_tokens - cached_tokens
    tokens = tokens_per_gpu * shape.gpus_per_replica
    prompts = tokens / new_per_prompt
    mix = StepMix(0.0, 0.0, tokens, prompts, new_per_prompt)
    cost = _step(model, shape, mix, _prefix_attention(model, shape, prompts, cached_tokens, new_per_prompt))
    return UnitStep(cost.time_s, prompts * prompt_tokens, shape.gpus_per_replica,
                    condition.cluster.gpus_per_node, cost.comm_s)


def _prefix_attention(model: CostModel, shape: ParallelShape, prompts: float, cached: int,
                      new: int) -> PhaseCost:
    """Per layer: the new tokens' attention to the cached prefix (c n pairs per prompt)."""
    if cached <= 0:
        return PhaseCost()
    per_group = prompts / shape.attn_dp
    flops = per_group * model.arch.attention_core_flops(new, cached) / (shape.tp * shape.sp)
    kv = per_group * cached / shape.sp * model.kv_bytes_per_token_per_gpu(shape)
    return model.attention_op(flops, kv)
