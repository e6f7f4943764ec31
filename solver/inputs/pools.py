"""Mixed GPU clusters: `hardware.pools`, a list of GPU groups of one kind each (issue 16).

    hardware:
      pools:
        - {gpu: h100-sxm-80gb, num_nodes: 2, gpus_per_node: 8}
        - {gpu: a100-sxm-80gb, num_nodes: 2, intra_node_gb_per_s: 300}
      inter_pool_gb_per_s: 25        # default: the smallest inter-node bandwidth of the pools

A pool takes the single-kind keys of one GPU kind (card, node count and size, links,
efficiencies, overheads, price); the keys that describe the whole cluster's memory policy
(usable_memory_fraction, runtime_overhead_gb) sit beside `pools` and apply to every pool. Each
pool resolves to a complete single-kind `Condition` (the same model, precision, workload, SLOs and
serving), so its cost model is exactly the one a single-kind condition on those GPUs gets. One pool
is the single-kind form. Errors name the file, the key (hardware.pools[i].<key>) and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from solver.errors import InputError
from solver.inputs.cards import GpuCard
from solver.inputs.condition import Condition, build_condition
from solver.inputs.loading import validation_error

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
MAX_POOLS = 8
MAX_PIPELINE_STAGES = 4  # a mixed replica's pipeline depth (docs/design.md, "Mixed clusters")
# single-kind keys that are not planned on mixed pools, and why
_REFUSED = {
    "objective": "a mixed cluster maximizes goodput (scored tokens/s of all replicas at the SLOs, "
                 "per GPU of the whole cluster); objective weights apply to one GPU kind",
    "workload.expert_load": "expert placement by load is planned on one GPU kind only",
    "workload.request_rate": "a mixed cluster is planned for its goodput at the SLOs; a required "
                             "request rate is planned on one GPU kind only",
    "policy.redundant_experts": "expert placement by load is planned on one GPU kind only",
    "policy.dp": "replica counts are chosen per pipeline template on mixed pools",
    "policy.sp": "sequence parallelism is not planned on mixed pools",
    "policy.attn_dp": "attention data parallelism is not planned on mixed pools",
}


class PoolSpec(BaseModel):
    """One GPU group: a card and its nodes, with the card's defaults overridable as in the
    single-kind `hardware` block."""

    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1, max_length=60)
    gpu: str | GpuCard
    num_nodes: int = Field(gt=0, le=100_000)
    gpus_per_node: int | None = Field(default=None, gt=0, le=1_024)
    intra_node_gb_per_s: float | None = Field(default=None, ge=1e-3, le=1e6)
    inter_node_gb_per_s: float | None = Field(default=None, ge=1e-3, le=1e6)
    mfu: float | None = Field(default=None, ge=1e-3, le=1)
    memory_bandwidth_utilization: float | None = Field(default=None, ge=1e-3, le=1)
    collective_latency_us: float | None = Field(default=None, ge=0, le=1e6)
    link_bandwidth_utilization: float | None = Field(default=None, ge=1e-3, le=1)
    layer_overhead_us: float | None = Field(default=None, ge=0, le=1e6)
    gpu_hour_usd: float | None = Field(default=None, gt=0, le=1e6)


class PooledHardwareSpec(BaseModel):
    """`hardware` with `pools` instead of one gpu."""

    model_config = _STRICT
    pools: list[PoolSpec] = Field(min_length=1, max_length=MAX_POOLS)
    inter_pool_gb_per_s: float | None = Field(
        default=None, ge=1e-3, le=1e6, description="per GPU, between GPUs of different pools "
        "(default: the smallest inter-node bandwidth of the pools)")
    usable_memory_fraction: float = Field(default=0.9, gt=0, le=1)
    runtime_overhead_gb: float = Field(default=1.0, ge=0, le=1e4)
    max_pools_per_replica: int = Field(
        default=2, ge=1, le=MAX_PIPELINE_STAGES, description="pools one replica's pipeline may "
        "span (each pool one run of stages); 2 pairs a fast card with a roomy one, and each "
        "more multiplies the pipeline templates the planner prices")

    @model_validator(mode="after")
    def _unique_names(self) -> PooledHardwareSpec:
        names = [p.name for p in self.pools if p.name is not None]
        if len(names) != len(set(names)):
            raise ValueError("pool names must be unique")
        return self


@dataclass(frozen=True)
class Pool:
    """One resolved pool: its name, and the single-kind condition of its GPUs."""

    index: int
    name: str
    condition: Condition

    @property
    def num_gpus(self) -> int:
        return self.condition.cluster.num_gpus

    @property
    def gpus_per_node(self) -> int:
        return self.condition.cluster.gpus_per_node

    @property
    def gpu_name(self) -> str:
        return self.condition.cluster.gpu.name


@dataclass(frozen=True)
class MixedCluster:
    """Every pool, in the file's order, and the link between pools (bytes/s per GPU)."""

    pools: tuple[Pool, ...]
    inter_pool_bytes_per_s: float
    max_pools_per_replica: int = 2

    @property
    def num_gpus(self) -> int:
        return sum(p.num_gpus for p in self.pools)

    @property
    def capacities(self) -> tuple[int, ...]:
        return tuple(p.num_gpus for p in self.pools)


def has_pools(data: dict[str, Any]) -> bool:
    hardware = data.get("hardware")
    return isinstance(hardware, dict) and "pools" in hardware


def _refuse_single_kind_keys(data: dict[str, Any], source: str) -> None:
    extra = sorted(set(data["hardware"]) - set(PooledHardwareSpec.model_fields))
    single = {"gpu", "num_nodes", "gpus_per_node", "max_gpus"}
    for key in extra:
        if key in single:
            raise InputError(source, f"hardware.{key}", "give either pools (a mixed cluster) or "
                             "one gpu with its nodes, not both; each pool names its gpu and nodes")
    for key, reason in _REFUSED.items():
        section, _, name = key.partition(".")
        value = data.get(section)
        if (name and isinstance(value, dict) and value.get(name) not in (None, 0)) or (
                not name and value is not None):
            raise InputError(source, key, reason)
    serving = data.get("serving")
    if isinstance(serving, dict) and serving.get("mode", "continuous") != "continuous":
        raise InputError(source, "serving.mode", "mixed pools are planned in continuous serving "
                         f"(serving.mode {serving.get('mode')!r}: one GPU kind)")


def _pool_hardware(spec: PooledHardwareSpec, pool: PoolSpec) -> dict[str, Any]:
    fields = pool.model_dump(exclude_none=True, exclude={"name"})
    if isinstance(pool.gpu, GpuCard):
        fields["gpu"] = pool.gpu
    return fields | {"usable_memory_fraction": spec.usable_memory_fraction,
                     "runtime_overhead_gb": spec.runtime_overhead_gb}


def _pool_condition(data: dict[str, Any], spec: PooledHardwareSpec, index: int, source: str,
                    default_name: str) -> Condition:
    """The single-kind condition of pool `index`; its errors re-keyed to hardware.pools[i]."""
    pool_data = {k: v for k, v in data.items() if k != "hardware"}
    pool_data["hardware"] = _pool_hardware(spec, spec.pools[index])
    try:
        return build_condition(pool_data, source, default_name)
    except InputError as exc:
        key = exc.key.replace("hardware.", f"hardware.pools[{index}].", 1)
        raise InputError(source, key, exc.reason) from None


def _pool_names(spec: PooledHardwareSpec, conditions: list[Condition]) -> list[str]:
    """A pool's name: given, else its card's reference, numbered when a card appears twice."""
    refs = [c.gpu_ref for c in conditions]
    names = []
    for i, (pool, ref) in enumerate(zip(spec.pools, refs, strict=True)):
        if pool.name is not None:
            names.append(pool.name)
        else:
            names.append(ref if refs.count(ref) == 1 else f"{ref}-{refs[:i].count(ref) + 1}")
    return names


def build_pooled_condition(data: dict[str, Any], source: str, default_name: str) -> Condition:
    """A condition with `hardware.pools`: one pool is the single-kind condition of its GPUs; two or
    more give the first pool's condition with `mixed` set (the planner dispatches on it)."""
    _refuse_single_kind_keys(data, source)
    try:
        spec = PooledHardwareSpec.model_validate(data["hardware"])
    except ValidationError as exc:
        err = validation_error(exc, source, PooledHardwareSpec)
        raise InputError(source, f"hardware.{err.key}", err.reason) from None
    conditions = [_pool_condition(data, spec, i, source, default_name) for i in range(len(spec.pools))]
    names = _pool_names(spec, conditions)
    if len(set(names)) != len(names):
        raise InputError(source, "hardware.pools", f"pool names collide ({', '.join(names)}); "
                         "name the pools")
    if len(conditions) == 1:
        return conditions[0].model_copy(update={"raw": data})
    inter = spec.inter_pool_gb_per_s
    bandwidth = inter * 1e9 if inter is not None else min(
        c.cluster.inter_node_bytes_per_s for c in conditions)
    pools = tuple(Pool(i, name, c) for i, (name, c) in enumerate(zip(names, conditions, strict=True)))
    return conditions[0].model_copy(update={"raw": data, "mixed": MixedCluster(pools, bandwidth,
                                                                         spec.max_pools_per_replica)})
