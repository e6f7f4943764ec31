"""The numbers calibration fits, per GPU card: memory_bandwidth_utilization, layer_overhead_us,
collective_latency_us and link_bandwidth_utilization, and per card and compute precision the mfu
(achievable fraction of the dense tensor-core peak). No per-row factors. Their starting points:
the cards' uncalibrated defaults, or the values the cards carry today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

import yaml

from solver.calibration.measurements import MeasuredRow
from solver.inputs.card_library import bundled_folder
from solver.inputs.cards import GpuCard

_DEFAULTS = GpuCard.model_fields


@dataclass(frozen=True)
class GpuParams:
    """The fitted parameters of one GPU card."""

    memory_bandwidth_utilization: float
    layer_overhead_us: float
    mfu: dict[str, float] = field(default_factory=dict)  # per compute precision
    collective_latency_us: float = _DEFAULTS["collective_latency_us"].default
    link_bandwidth_utilization: float = _DEFAULTS["link_bandwidth_utilization"].default

    def mfu_for(self, precision: str, default: float) -> float:
        return self.mfu.get(precision, default)


Params = dict[str, GpuParams]


@cache
def bundled_gpu_card(name: str) -> GpuCard:
    """The bundled hardware card `name` (read once; card_writer clears the cache after writing)."""
    data = yaml.safe_load((bundled_folder("GPU") / f"{name}.yaml").read_text(encoding="utf-8"))
    return GpuCard.model_validate(data)


def baseline_params(rows: Iterable[MeasuredRow]) -> Params:
    """Uncalibrated: the card's default mfu / bandwidth utilization, no per-layer overhead, the
    default collective latency and full link bandwidth."""
    out: Params = {}
    for row in rows:
        card = bundled_gpu_card(row.gpu_card)
        current = out.get(row.gpu_card) or GpuParams(card.memory_bandwidth_utilization, 0.0, {})
        out[row.gpu_card] = replace(current, mfu={**current.mfu, row.precision: card.mfu})
    return out


def card_params(rows: Iterable[MeasuredRow]) -> Params:
    """What the planner uses today: the cards' calibrated values where present, else defaults."""
    out: Params = {}
    for row in rows:
        card = bundled_gpu_card(row.gpu_card)
        eff = card.efficiency.get(row.precision)  # type: ignore[call-overload]
        mbu = eff.memory_bandwidth_utilization if eff else card.memory_bandwidth_utilization
        current = out.get(row.gpu_card) or GpuParams(
            mbu, card.layer_overhead_us, {}, card.collective_latency_us,
            card.link_bandwidth_utilization)
        out[row.gpu_card] = replace(current, mfu={**current.mfu,
                                                  row.precision: eff.mfu if eff else card.mfu})
    return out


def params_table(params: Params) -> list[str]:
    """The parameters as a Markdown table (`paraplan calibrate`, docs/accuracy.md)."""
    lines = ["| card | precision | mfu | memory bandwidth utilization | layer overhead (us) | "
             "collective latency (us) | link bandwidth utilization |", "|---|---|---|---|---|---|---|"]
    for gpu, p in sorted(params.items()):
        for precision, mfu in sorted(p.mfu.items()):
            lines.append(f"| {gpu} | {precision} | {mfu:.3f} | "
                         f"{p.memory_bandwidth_utilization:.3f} | {p.layer_overhead_us:.1f} | "
                         f"{p.collective_latency_us:.1f} | {p.link_bandwidth_utilization:.3f} |")
    return lines
