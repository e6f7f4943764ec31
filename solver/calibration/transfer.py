"""Parameters for GPU cards without measurements, by what each parameter physically depends on.

    an identical device        `calibrated_as`: that card's fit, verbatim (H800 = H100 SXM: same die,
                               memory and clocks; only NVLink is cut, and the link rate is a spec)
    mfu of a precision         the die: the median over fitted cards of the same architecture
                               generation, else over every fitted card, of that precision's rate
                               class (bf16 = fp16, fp8 = int8); fp4 and int4 take the fp8 class's
                               fraction where they were measured nowhere (the same tensor cores at
                               twice the rate)
    memory bandwidth util.,    the memory system and the kernel launches of the runtime: the same
    per-layer overhead         architecture's median, else every fitted card's
    collective latency,        the link kind (NVLink/NVSwitch or PCIe): the median of the fitted
    link bandwidth util.       cards with that link whose rows include tensor parallelism, else the
                               card defaults (5 us, the rated link bandwidth)

Leave-one-card-out: each fitted card predicted with the parameters this module gives it from the
other cards (the expected error of a card without measurements, docs/accuracy.md). The fit
separates by card, so the other cards' parameters are their full-fit values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from solver.calibration.measurements import MeasuredRow
from solver.calibration.parameters import GpuParams, Params, bundled_gpu_card
from solver.inputs.cards import GpuCard

# precisions of one tensor-core rate (their mfu is one number), and the class a narrower one
# takes its fraction from when it was measured nowhere (fp4 runs on the fp8 tensor cores at 2x)
RATE_CLASSES = (("bf16", "fp16"), ("fp8", "int8"), ("fp4", "int4"))
NARROWER_OF = {("fp4", "int4"): ("fp8", "int8")}
_DEFAULTS = GpuParams(memory_bandwidth_utilization=0.8, layer_overhead_us=0.0)


@dataclass(frozen=True)
class Fitted:
    """The cards calibration fitted: their parameters, and which had rows with TP > 1."""

    params: Params
    with_tp: frozenset[str]

    @classmethod
    def of(cls, params: Params, rows: Iterable[MeasuredRow]) -> Fitted:
        rows = list(rows)
        cards = {r.gpu_card for r in rows}
        return cls({g: p for g, p in params.items() if g in cards},
                   frozenset(r.gpu_card for r in rows if r.tp > 1))

    def without(self, gpu: str) -> Fitted:
        return Fitted({g: p for g, p in self.params.items() if g != gpu}, self.with_tp - {gpu})


def _median(values: Sequence[float], default: float) -> float:
    return float(statistics.median(values)) if values else default


def _mfu(precision: str, pools: Sequence[list[GpuParams]]) -> float | None:
    """The median mfu of `precision`'s rate class in the first pool that measured it, else of
    the class it is the narrower format of; None when no pool has either."""
    same = next((c for c in RATE_CLASSES if precision in c), (precision,))
    for classes in (same, NARROWER_OF.get(same)):
        for pool in pools:
            values = [p.mfu[q] for p in pool for q in classes or () if q in p.mfu]
            if values:
                return _median(values, 0.0)
    return None


def transfer(card: GpuCard, fitted: Fitted) -> tuple[GpuParams, str]:
    """The parameters of a card without measurements, and a sentence saying where they came from."""
    if card.calibrated_as in fitted.params:
        return fitted.params[card.calibrated_as], (
            f"the fit of {card.calibrated_as} (the identical device: same die, memory and clocks)")
    cards = {g: bundled_gpu_card(g) for g in sorted(fitted.params)}
    kin = [g for g, c in cards.items() if card.architecture and c.architecture == card.architecture]
    pool = [fitted.params[g] for g in (kin or list(cards))]
    everyone = [fitted.params[g] for g in cards]
    mfu = {p: v for p in sorted(card.dense_tflops) if (v := _mfu(p, (pool, everyone))) is not None}
    links = [g for g in sorted(fitted.with_tp)
             if g in cards and cards[g].intra_node_link == card.intra_node_link]
    linked = [fitted.params[g] for g in links]
    params = GpuParams(
        memory_bandwidth_utilization=_median([p.memory_bandwidth_utilization for p in pool],
                                             _DEFAULTS.memory_bandwidth_utilization),
        layer_overhead_us=_median([p.layer_overhead_us for p in pool], 0.0),
        mfu=mfu,
        collective_latency_us=_median([p.collective_latency_us for p in linked],
                                      _DEFAULTS.collective_latency_us),
        link_bandwidth_utilization=_median([p.link_bandwidth_utilization for p in linked],
                                           _DEFAULTS.link_bandwidth_utilization),
    )
    others = f"every calibrated card ({', '.join(cards)}; none shares its architecture)"
    source = f"the {card.architecture} cards {', '.join(kin)}" if kin else others
    link_source = (f"the {card.intra_node_link} cards {', '.join(links)}" if links
                   else "the card defaults (no calibrated card with this link)")
    return params, (f"medians over {source} (fp4 = fp8's fraction, fp16 = bf16's); collectives "
                    f"from {link_source}")


def complete_precisions(card: GpuCard, params: GpuParams) -> tuple[GpuParams, list[str]]:
    """A fitted card's precisions that were not measured take the fraction of their rate class,
    else the median of the card's measured ones (the same die: bf16 and fp8 fits differ by a few
    percent, docs/accuracy.md); returns the precisions filled."""
    measured, filled = dict(params.mfu), []
    for precision in sorted(card.dense_tflops):
        if precision not in measured:
            value = _mfu(precision, ([params],))
            measured[precision] = value if value is not None else _median(
                list(params.mfu.values()), card.mfu)
            filled.append(precision)
    return replace(params, mfu=measured), filled


def with_link_parameters(gpu: str, params: GpuParams, fitted: Fitted) -> GpuParams:
    """A fitted card without TP rows takes its collective parameters from its link kind."""
    if gpu in fitted.with_tp:
        return params
    moved, _ = transfer(bundled_gpu_card(gpu), fitted.without(gpu))
    return replace(params, collective_latency_us=moved.collective_latency_us,
                   link_bandwidth_utilization=moved.link_bandwidth_utilization)


def leave_one_card_out(fitted: Fitted) -> Params:
    """Every fitted card's parameters as transfer() would give them without its measurements."""
    return {g: transfer(bundled_gpu_card(g), fitted.without(g))[0] for g in sorted(fitted.params)}
