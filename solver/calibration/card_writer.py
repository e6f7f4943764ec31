"""Writing a calibration into the hardware cards (`paraplan calibrate --write-cards`): the fitted
`efficiency`, `layer_overhead_us`, `collective_latency_us`, `link_bandwidth_utilization` and a
`calibration` note replace any earlier block; every other line of the card, comments included, is
kept. Cards without measurements get the parameters solver/calibration/transfer.py gives them, and
a note with the leave-one-card-out error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from solver.calibration.accuracy import ErrorStats, Prediction
from solver.calibration.calibrate import CalibrationResult
from solver.calibration.measurements import METRIC_LABELS, METRICS, ROLE_TEST, ROLE_TRAIN, role
from solver.calibration.parameters import GpuParams, bundled_gpu_card
from solver.calibration.transfer import Fitted, complete_precisions, transfer
from solver.errors import InputError
from solver.inputs.card_library import source_checkout
from solver.inputs.cards import GpuCard

HARDWARE_CARDS = "conditions/hardware"  # what --write-cards rewrites, in a source checkout


def checkout_hardware_folder() -> Path:
    """conditions/hardware of this source checkout: the cards --write-cards rewrites."""
    root = source_checkout()
    if root is None:
        raise InputError("--write-cards", "", f"rewrites {HARDWARE_CARDS}/*.yaml of a source "
                         "checkout of paraplan; this one is an installed package")
    return root / HARDWARE_CARDS


# precision pairs with the same tensor-core rate on every card here: a fit of one also stands for
# the other when the other was not measured
_SAME_RATE = {"bf16": "fp16", "fp16": "bf16"}
_OWNED_KEYS = ("efficiency", "layer_overhead_us", "collective_latency_us",
               "link_bandwidth_utilization", "calibration")


def card_efficiencies(params: GpuParams) -> dict[str, dict[str, float]]:
    out = {p: {"mfu": round(v, 3),
               "memory_bandwidth_utilization": round(params.memory_bandwidth_utilization, 3)}
           for p, v in sorted(params.mfu.items())}
    for p in list(out):
        alias = _SAME_RATE.get(p)
        if alias and alias not in out:
            out[alias] = dict(out[p])
    return dict(sorted(out.items()))


def calibration_note(result: CalibrationResult, gpu: str) -> str:
    mine = [p for p in result.predictions if p.row.gpu_card == gpu]
    train = sum(p.role == ROLE_TRAIN for p in mine)
    test = [p for p in mine if p.role == ROLE_TEST]
    errors = ", ".join(
        f"{METRIC_LABELS[m]} {ErrorStats.of([p for p in test if p.row.metric == m]).median:.0f}%"
        for m in METRICS if any(p.row.metric == m for p in test))
    software = sorted({p.row.software for p in mine if p.role in (ROLE_TRAIN, ROLE_TEST)})
    fitted = sorted(result.params[gpu].mfu)
    aliases = [f"{_SAME_RATE[p]} = {p}" for p in fitted
               if p in _SAME_RATE and _SAME_RATE[p] not in fitted]
    note = (f"Fitted by `paraplan calibrate` on {result.date} from {_display(result.source)} "
            f"({', '.join(software)} rows): {train} training rows and {len(test)} held-out rows "
            f"on this card; held-out median absolute error {errors or 'n/a'}. Measured precisions: "
            f"{', '.join(fitted)}")
    if aliases:
        note += f" ({'; '.join(aliases)}: same tensor-core rate)"
    return note + ". Method, per-card and per-model errors: docs/accuracy.md."


def loco_errors(loco: list[Prediction]) -> str:
    """The leave-one-card-out medians, as the cards and plan.md quote them."""
    return ", ".join(f"{METRIC_LABELS[m]} {ErrorStats.of([p for p in loco if p.row.metric == m]).median:.0f}%"
                     for m in METRICS if any(p.row.metric == m for p in loco))


def transfer_note(result: CalibrationResult, source: str) -> str:
    return (f"Not measured: transferred by `paraplan calibrate` on {result.date} from "
            f"{_display(result.source)}: {source}. Expected error of a card predicted this way "
            f"(leave-one-card-out median over the calibrated cards): {loco_errors(result.loco)}; "
            "docs/accuracy.md.")


def _display(path: str) -> str:
    """The data file as the cards cite it: relative to the source checkout when inside it."""
    root = source_checkout()
    try:
        return Path(path).resolve().relative_to(root).as_posix() if root else str(path)
    except ValueError:
        return str(path)


def _strip_keys(text: str, keys: Sequence[str]) -> list[str]:
    """The card's lines without the top-level `keys` (and their indented continuation lines)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        top = line[:1] not in (" ", "\t", "#", "") and ":" in line
        if top:
            skipping = line.split(":", 1)[0].strip() in keys
        elif skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        else:
            skipping = False
        if not skipping:
            out.append(line)
    return out


def card_text(original: str, params: GpuParams, note: str, how: str = "calibrated") -> str:
    """The card with the calibrated block in place of any earlier one, before `source:`; every
    other line (comments included) is kept as it was."""
    lines = [line.replace("# default, to be calibrated", "# uncalibrated default (see efficiency)")
             for line in _strip_keys(original, _OWNED_KEYS)]
    block = [f"efficiency:                    # {how}: see `calibration`"]
    for precision, eff in card_efficiencies(params).items():
        block.append(f"  {precision}: {{mfu: {eff['mfu']}, memory_bandwidth_utilization: "
                     f"{eff['memory_bandwidth_utilization']}}}")
    block += [
        f"{f'layer_overhead_us: {params.layer_overhead_us:.1f}':<30} # {how}: fixed time per "
        "transformer layer per forward pass",
        f"{f'collective_latency_us: {params.collective_latency_us:.1f}':<30} # {how}: alpha "
        "per collective hop",
        f"link_bandwidth_utilization: {params.link_bandwidth_utilization:.3f}  # {how}: of "
        "intra_node_gb_per_s, in collectives"]
    block.append("calibration: >-")
    block += ["  " + chunk for chunk in _wrap(note, 98)]
    at = next((i for i, line in enumerate(lines) if line.startswith("source:")), len(lines))
    return "\n".join(lines[:at] + block + lines[at:]) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])


def write_cards(result: CalibrationResult, directory: Path | None = None) -> list[Path]:
    """Write the fitted parameters into the hardware cards (validated before writing), and the
    transferred ones into the cards without measurements; by default the source checkout's
    conditions/hardware."""
    from solver.render.writer import write_atomic

    directory = checkout_hardware_folder() if directory is None else directory
    train = [r for r in result.rows if role(r) == ROLE_TRAIN]
    fitted = Fitted.of(result.params, train)
    written = []
    for path in sorted(directory.glob("*.yaml")):
        original = path.read_text(encoding="utf-8")
        card = GpuCard.model_validate(yaml.safe_load(original))
        how = "calibrated" if card.name in fitted.params else "transferred"
        if card.name in fitted.params:
            fit = result.params[card.name]
            params, filled = complete_precisions(card, fit)
            filled = [f for f in filled if _SAME_RATE.get(f) not in fit.mfu]  # the note has those
            note = calibration_note(result, card.name)
            if filled:
                note += (f" Not measured here: {', '.join(filled)}, at the fraction of the "
                         "measured precisions (same die).")
            if card.name not in fitted.with_tp:
                note += (" No TP > 1 rows: collective latency and link bandwidth from the "
                         f"{card.intra_node_link} cards.")
        else:
            params, source = transfer(card, fitted)
            note = transfer_note(result, source)
        text = card_text(original, params, note, how)
        GpuCard.model_validate(yaml.safe_load(text))  # never write a card that does not load
        written.append(write_atomic(path, text))
    bundled_gpu_card.cache_clear()
    return written
