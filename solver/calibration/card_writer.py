"""Writing a calibration into the hardware cards (`paraplan calibrate --write-cards`): the fitted
`efficiency`, `layer_overhead_us` and a `calibration` note replace any earlier block; every other
line of the card, comments included, is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from solver.calibration.accuracy import ErrorStats
from solver.calibration.calibrate import CalibrationResult
from solver.calibration.measurements import METRIC_LABELS, METRICS, ROLE_TEST, ROLE_TRAIN
from solver.calibration.parameters import GpuParams, bundled_gpu_card
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
_OWNED_KEYS = ("efficiency", "layer_overhead_us", "calibration")


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


def card_text(original: str, params: GpuParams, note: str) -> str:
    """The card with the calibrated block in place of any earlier one, before `source:`; every
    other line (comments included) is kept as it was."""
    lines = [line.replace("# default, to be calibrated", "# uncalibrated default (see efficiency)")
             for line in _strip_keys(original, _OWNED_KEYS)]
    block = ["efficiency:                    # calibrated: see `calibration`"]
    for precision, eff in card_efficiencies(params).items():
        block.append(f"  {precision}: {{mfu: {eff['mfu']}, memory_bandwidth_utilization: "
                     f"{eff['memory_bandwidth_utilization']}}}")
    block.append(f"{f'layer_overhead_us: {params.layer_overhead_us:.1f}':<31}"
                 "# calibrated: fixed time per transformer layer per forward pass")
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
    """Write the fitted parameters into the hardware cards (validated before writing); by default
    the source checkout's conditions/hardware."""
    from solver.render.writer import write_atomic

    directory = checkout_hardware_folder() if directory is None else directory
    written = []
    fitted_gpus = {p.row.gpu_card for p in result.predictions if p.role == ROLE_TRAIN}
    for gpu in sorted(fitted_gpus):
        path = directory / f"{gpu}.yaml"
        text = card_text(path.read_text(encoding="utf-8"), result.params[gpu],
                         calibration_note(result, gpu))
        GpuCard.model_validate(yaml.safe_load(text))  # never write a card that does not load
        written.append(write_atomic(path, text))
    bundled_gpu_card.cache_clear()
    return written
