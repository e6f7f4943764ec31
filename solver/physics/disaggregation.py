"""Disaggregated serving: a prefill pool and a decode pool, the KV cache sent between them.

Each pool runs instances of one parallel shape. The step pricing is continuous batching's
(physics/continuous.py), split over the two pools:

- a prefill instance is continuous batching of the same prompts with one output token: every step
  carries up to T prompt tokens (max-num-batched-tokens) of at most C = max(1, floor(k T / I))
  prompts (k = ceil(I / T) steps a prompt takes), so its KV memory is those prompts' and its
  throughput counts input tokens; its TTFT is the request's own chunked prefill plus the wait for
  a slot (queueing at the utilization u of its slots);
- a decode instance runs only decodes (continuous.decode_point): TPOT is its decode step, KV
  memory max-num-seqs sequences at the mean context, workspace one decode token per sequence;
- the prompt's KV leaves the prefill GPUs that hold it, each sending its own shard over its own
  link at the same time, and arrives at the decode GPUs that keep it the same way:

    bytes_per_gpu(shape) = I / sp * ceil(L / pp) * kv bytes per token, layer and GPU
                           (windowed layers keep at most their window)
    transfer_s = max(bytes_per_gpu(prefill), bytes_per_gpu(decode)) / link bandwidth + latency

  The link defaults to the cluster's inter-node network (serving.pools.link_gb_per_s).

A request's TTFT = prefill TTFT + transfer + decode admission wait; its TPOT is the decode pool's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from solver.inputs.condition import Condition
from solver.physics.continuous import CONTINUOUS, ContinuousLoad

if TYPE_CHECKING:
    from solver.physics.cost import CostModel
    from solver.physics.shapes import ParallelShape


def aggregated_condition(condition: Condition) -> Condition:
    """The condition served by one pool of continuous-batching replicas (no pools block)."""
    serving = condition.serving.model_copy(update={"mode": CONTINUOUS, "pools": None})
    return condition.model_copy(update={"serving": serving})


def goodput_condition(condition: Condition) -> Condition:
    """serving.mode auto's aggregated side: continuous batching maximizing goodput per GPU (the
    objective's throughput term alone: throughput at an operating point meeting every SLO), the
    figure the disaggregated side maximizes too."""
    objective = condition.objective.model_copy(update={"latency_weight": 0.0, "throughput_weight": 1.0})
    return aggregated_condition(condition).model_copy(update={"objective": objective})


def prefill_condition(condition: Condition) -> Condition:
    """The prefill pool's condition: the same prompts with one output token."""
    workload = condition.workload.model_copy(update={"output_tokens": 1})
    return aggregated_condition(condition).model_copy(update={"workload": workload})


def pool_condition(condition: Condition, pool: str, gpus: int) -> Condition:
    """One pool as a cluster of its own: its `gpus` GPUs, all used, serving its part."""
    base = prefill_condition(condition) if pool == "prefill" else aggregated_condition(condition)
    cluster = base.cluster.model_copy(update={"num_gpus": gpus, "fixed": True})
    policy = base.policy.model_copy(update={"use_all_gpus": True})
    return base.model_copy(update={"cluster": cluster, "policy": policy})


def prefill_slots(chunk_tokens: int, input_tokens: int) -> int:
    """Prompts a prefill instance holds at once: the chunk budget's worth, C = max(1, floor(k T / I))."""
    steps = math.ceil(input_tokens / chunk_tokens)
    return max(1, steps * chunk_tokens // input_tokens)


def prefill_load(chunk_tokens: int, utilization: float, input_tokens: int) -> ContinuousLoad:
    return ContinuousLoad(prefill_slots(chunk_tokens, input_tokens), utilization, chunk_tokens)


@dataclass(frozen=True)
class PoolLink:
    """The link between the pools, per GPU."""

    bytes_per_s: float
    latency_s: float

    @classmethod
    def of(cls, condition: Condition) -> PoolLink:
        pools, cluster = condition.serving.pool_spec, condition.cluster
        bandwidth = (pools.link_gb_per_s * 1e9 if pools.link_gb_per_s is not None
                     else cluster.inter_node_bytes_per_s)
        latency = (pools.link_latency_us * 1e-6 if pools.link_latency_us is not None
                   else cluster.collective_latency_s)
        return cls(bandwidth, latency)


def kv_bytes_per_gpu(model: CostModel, shape: ParallelShape, input_tokens: int) -> float:
    """KV of one prompt on one GPU that holds it (the largest stage of a balanced split)."""
    kinds = model.arch.layer_kinds
    per_layer = [min(input_tokens, k.window_tokens) if k.window_tokens else input_tokens
                 for k in kinds]
    tokens = sum(per_layer) / len(per_layer) * math.ceil(len(per_layer) / shape.pp)
    return float(tokens / shape.sp * model.kv_bytes_per_token_per_gpu(shape))


def kv_transfer_s(send_bytes: float, receive_bytes: float, link: PoolLink) -> float:
    """One prompt's KV from the prefill to the decode instance (both sides in parallel per GPU)."""
    return max(send_bytes, receive_bytes) / link.bytes_per_s + link.latency_s
