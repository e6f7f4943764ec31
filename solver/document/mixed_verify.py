"""Solver-free re-check of a mixed plan: every stage's memory and time re-derived on its own GPU
kind (physics/mixed.evaluate_replica), every SLO per replica group, the layer split, and the GPU
accounting per pool (replicas x GPUs per pool <= the pool; the device map's GPUs per pool and
kind). Rows are (name, value, limit, passed, detail), as document/verify.py's."""

from __future__ import annotations

from solver.document.mixed_plan import GroupChoice, MixedPlan, evaluate_group
from solver.inputs.condition import Condition

Row = tuple[str, str, str, bool, str]
GB = 1e9
REL = 1e-9


def _group_rows(cond: Condition, g: int, choice: GroupChoice, plan: MixedPlan) -> list[Row]:
    _, stages, metrics = evaluate_group(cond, choice)
    rows: list[Row] = []
    bounds = list(choice.boundaries)
    n = cond.model.num_hidden_layers
    steps = zip(bounds[:-1], bounds[1:], strict=True)
    contiguous = bounds[0] == 0 and bounds[-1] == n and all(a < b for a, b in steps)
    rows.append((f"replicas[{g}].layers", str(bounds), f"0 .. {n}", contiguous,
                 "contiguous, non-empty stages"))
    for s in stages:
        card = cond.mixed.pools[s.pool].gpu_name
        rows.append((f"replicas[{g}].memory.stage{s.stage}", f"{s.memory_bytes / GB:.2f} GB",
                     f"<= {s.usable_bytes / GB:.2f} GB", s.memory_bytes <= s.usable_bytes,
                     f"weights + KV cache + workspace + overhead on {card}"))
        planned = plan.replicas[g].stages[s.stage]
        same = abs(planned.mix_ms - s.step_s["mix"] * 1e3) <= REL * max(1.0, planned.mix_ms)
        rows.append((f"replicas[{g}].time.stage{s.stage}", f"{s.step_s['mix'] * 1e3:.3f} ms",
                     f"{planned.mix_ms:.3f} ms", same and planned.gpu == card,
                     f"mix step re-derived on {card}"))
    slo = cond.slo
    for key, value, limit in (("slo.ttft_ms", metrics.ttft_s, slo.ttft_ms),
                              ("slo.tpot_ms", metrics.tpot_s, slo.tpot_ms),
                              ("slo.e2e_latency_ms", metrics.e2e_latency_s, slo.e2e_latency_ms)):
        if limit is not None:
            rows.append((f"replicas[{g}].{key}", f"{value * 1e3:.2f} ms", f"<= {limit:g} ms",
                         value * 1e3 <= limit, ""))
    return rows


def _pool_rows(cond: Condition, plan: MixedPlan, choices: list[GroupChoice]) -> list[Row]:
    rows: list[Row] = []
    for p, pool in enumerate(cond.mixed.pools):
        used = sum(c.count * c.template.usage(len(cond.mixed.pools))[p] for c in choices)
        rows.append((f"gpus.{pool.name}", str(used), f"<= {pool.num_gpus}", used <= pool.num_gpus,
                     "replicas x GPUs of this pool per replica"))
        mapped = [d for d in plan.devices if d.pool == pool.name]
        kinds_ok = all(d.kind == pool.gpu_name for d in mapped)
        rows.append((f"devices.{pool.name}", str(len(mapped)), str(used),
                     len(mapped) == used and kinds_ok, f"device map on {pool.gpu_name}"))
    ids = [d.gpu for d in plan.devices]
    rows.append(("devices.unique", str(len(set(ids))), str(len(ids)), len(set(ids)) == len(ids),
                 "no GPU holds two stages"))
    return rows


def verify_mixed(cond: Condition, plan: MixedPlan, choices: list[GroupChoice]) -> list[Row]:
    """Every check; a plan is valid when every row passed."""
    rows: list[Row] = []
    total = 0.0
    for g, choice in enumerate(choices):
        rows += _group_rows(cond, g, choice, plan)
        total += choice.count * evaluate_group(cond, choice)[2].throughput_tokens_per_s
    rows += _pool_rows(cond, plan, choices)
    reported = plan.metrics.throughput_tokens_per_s
    rows.append(("metrics.throughput_tokens_per_s", f"{total:.3f}", f"{reported:.3f}",
                 abs(total - reported) <= REL * max(1.0, total), "sum over replicas, recomputed"))
    return rows


def failed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if not r[3]]
