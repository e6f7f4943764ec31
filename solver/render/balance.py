"""balance.csv: one row per GPU (placement, compute, memory, communication)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from solver.document.plan import Plan

if TYPE_CHECKING:
    import pandas as pd


def balance_rows(plan: Plan) -> list[dict[str, int | float]]:
    """One row per GPU (balance.csv): placement, compute, memory and communication."""
    return [{
        "gpu": d.gpu, "node": d.node, "replica": d.replica, "stage": d.stage,
        "tp_rank": d.tp_rank, "ep_rank": d.ep_rank, "first_layer": d.first_layer,
        "last_layer": d.last_layer, "num_experts": len(d.experts),
        "expert_token_share": d.expert_token_share if d.expert_token_share is not None else 0.0,
        "prefill_compute_ms": d.prefill_compute_ms, "decode_compute_ms": d.decode_compute_ms,
        "memory_gb": d.memory_gb, "weights_gb": d.memory_breakdown_gb.weights,
        "kv_cache_gb": d.memory_breakdown_gb.kv_cache,
        "prefill_comm_bytes": d.prefill_comm_bytes, "decode_comm_bytes": d.decode_comm_bytes,
    } for d in plan.devices]


def balance_frame(plan: Plan) -> pd.DataFrame:
    """balance_rows as a DataFrame (batch summaries); pandas is imported only here."""
    import pandas as pd

    return pd.DataFrame(balance_rows(plan))


def pools_balance_rows(plan: Plan) -> list[dict[str, int | float | str]]:
    """A disaggregated plan's balance.csv rows: every GPU of both pools by global id, with its
    pool and instance first (the pool's own rows otherwise: replica = instance)."""
    assert plan.pools is not None
    by_gpu = {m.gpu: m for m in plan.pools.device_map}
    rows: list[dict[str, int | float | str]] = []
    for pool in (plan.pools.prefill, plan.pools.decode):
        for row in balance_rows(pool.plan):
            m = by_gpu[pool.first_gpu + int(row["gpu"])]
            rest = {k: v for k, v in row.items() if k not in ("gpu", "node", "replica")}
            rows.append({"gpu": m.gpu, "node": m.node, "pool": m.pool, "instance": m.instance,
                         "role": m.role, **rest})
    return rows


def balance_csv(plan: Plan) -> str:
    """balance.csv without pandas (a solve does not import it): floats with 6 significant digits.
    A disaggregated plan lists both pools' GPUs by global id (pools_balance_rows)."""
    rows: list[dict[str, int | float | str]] = (
        pools_balance_rows(plan) if plan.pools is not None else balance_rows(plan))  # type: ignore[assignment]
    return rows_csv(rows)


def rows_csv(rows: list[dict[str, int | float | str]]) -> str:
    """CSV of one row per GPU, floats with 6 significant digits."""
    columns = list(rows[0]) if rows else []
    floats = {c for c in columns if any(isinstance(row[c], float) for row in rows)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([f"{row[c]:.6g}" if c in floats else row[c] for c in columns])
    return buffer.getvalue()
