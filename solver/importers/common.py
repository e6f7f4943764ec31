"""Shared pieces of the importers: the imported document, provenance comments, value parsing and a
YAML writer that puts each value's origin next to it.

An importer never invents a value silently: every field it reads is recorded with the source line
it came from (`Imported.note`), and every default it has to assume is added to the document's
`assumptions` list, which plan.md prints.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.errors import InputError

MAX_COMMENT_CHARS = 160


@dataclass
class Imported:
    """A condition (or plan, or model card) read from a foreign format, with where each value came
    from. `data` is what build_condition / ShortPlan / ModelCard validates."""

    source: str
    kind: str  # condition | plan | model
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # dotted key -> "file:line: text"
    read_only: list[str] = field(default_factory=list)  # read, not a key of the output
    assumptions: list[str] = field(default_factory=list)
    plan: Imported | None = None  # a strategy section imported alongside a condition

    def put(self, key: str, value: Any, origin: str) -> None:
        """Set a dotted key (`hardware.gpu.memory_gb`) and record where its value came from."""
        target = self.data
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
        self.origins[key] = origin

    def assume(self, key: str | None, value: Any, reason: str) -> None:
        """Set a value the source does not give, and list it as an assumption."""
        if key is not None:
            self.put(key, value, f"ASSUMED: {reason}")
        self.assumptions.append(f"{key} = {value}: {reason}" if key else reason)

    def get(self, key: str, default: Any = None) -> Any:
        target: Any = self.data
        for part in key.split("."):
            if not isinstance(target, dict) or part not in target:
                return default
            target = target[part]
        return target

    def with_assumptions(self) -> dict[str, Any]:
        """The data with the assumptions list attached (conditions only)."""
        data = dict(self.data)
        if self.kind == "condition" and self.assumptions:
            data["assumptions"] = list(self.assumptions)
        return data

    def to_yaml(self) -> str:
        header = [
            f"# Imported by `paraplan import` from {self.source}",
            "# Each value's comment says where it came from; ASSUMED values are not in the source",
            "# and are listed under `assumptions` (plan.md prints them).",
        ]
        if self.read_only:
            header.append("# Read from the source but not a key of this file:")
            header += [f"#   {_clip(line, 200)}" for line in self.read_only]
        if self.kind != "condition" and self.assumptions:
            header.append("# Assumed or ignored:")
            header += [f"#   {_clip(line, 200)}" for line in self.assumptions]
        data = self.with_assumptions()
        return "\n".join(header + emit_yaml(data, self.origins)) + "\n"


def origin(source: str, line_no: int, text: str) -> str:
    """`file:line: "text"` for a provenance comment."""
    return f'{source.rsplit("/", 1)[-1]}:{line_no}: "{text.strip()}"'


def key_origin(path: Path, key: str, value: Any) -> str:
    """`file.json: "key": value` for a provenance comment."""
    return f'{path.name}: "{key}": {value!r}'


def _clip(text: str, limit: int = MAX_COMMENT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- YAML with comments --------------------------------------------------------------------------


def yaml_scalar(value: Any) -> str:
    """A scalar PyYAML's safe loader reads back as the same value (strings JSON-quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r}")
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"  # PyYAML needs a dot to read 1e-05 as a float
        return text
    return json.dumps(str(value), ensure_ascii=False)


def emit_yaml(
    data: dict[str, Any], comments: dict[str, str], prefix: str = "", indent: int = 0
) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        note = f"  # {_clip(comments[path])}" if path in comments else ""
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:{note}")
            lines += emit_yaml(value, comments, path, indent + 2)
        elif (
            isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value)
        ):
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                lines.append(f"{pad}{key}: [{', '.join(yaml_scalar(v) for v in value)}]{note}")
            else:
                lines.append(f"{pad}{key}:{note}")
                lines += [f"{pad}  - {yaml_scalar(v)}" for v in value]
        elif isinstance(value, list | dict):
            lines.append(f"{pad}{key}: {json.dumps(value)}{note}")
        else:
            lines.append(f"{pad}{key}: {yaml_scalar(value)}{note}")
    return lines


# ---- value parsing -------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:[.,]\d+)?)"


def numbers_in(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", text)]


def one_number(text: str, source: str, where: str) -> float:
    found = numbers_in(text)
    if len(found) != 1:
        what = (
            "no number"
            if not found
            else f"{len(found)} numbers ({', '.join(f'{n:g}' for n in found)})"
        )
        raise InputError(source, where, f"expected one number, found {what}")
    return found[0]


def as_int(value: float, source: str, where: str) -> int:
    if value != int(value):
        raise InputError(source, where, f"{value:g} is not a whole number")
    return int(value)


_SCALES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def quantity(
    text: str, units: dict[str, float], source: str, where: str, default_unit: str | None = None
) -> float:
    """A number followed by one of `units` (case-insensitive, spaces ignored), in the base unit."""
    squashed = text.replace(" ", "").lower()
    match = re.search(r"(\d+(?:\.\d+)?)([a-z/%]*)", squashed)
    if not match:
        raise InputError(source, where, "no number found")
    value, unit = float(match.group(1)), match.group(2)
    for name in sorted(units, key=len, reverse=True):
        if unit.startswith(name):
            return _significant(value * units[name])
    if unit == "" and default_unit is not None:
        return _significant(value * units[default_unit])
    known = ", ".join(sorted(units))
    raise InputError(
        source, where, f"unit {unit or '(none)'!r} not understood (expected one of: {known})"
    )


def _significant(value: float) -> float:
    """A converted quantity to 12 significant digits: 3350 GB/s is 3.35 TB/s, not 3.3500000000000005
    (the same condition whatever unit the source wrote it in)."""
    return float(f"{value:.12g}")


TIME_MS = {
    "ms": 1.0,
    "millisecond": 1.0,
    "s": 1000.0,
    "sec": 1000.0,
    "second": 1000.0,
    "us": 1e-3,
    "µs": 1e-3,
    "min": 60_000.0,
}
TFLOPS = {"tflops": 1.0, "tflop/s": 1.0, "tflop": 1.0, "pflops": 1000.0, "gflops": 1e-3,
          "teraflops": 1.0, "petaflops": 1000.0, "pflop/s": 1000.0}
TB_PER_S = {"tbps": 1.0, "tb/s": 1.0, "tbs": 1.0, "gbps": 1e-3, "gb/s": 1e-3, "gbs": 1e-3}
GB = {"gb": 1.0, "gib": 1.073741824, "tb": 1000.0, "g": 1.0}


def fraction(text: str, source: str, where: str) -> float:
    """`60%` or `0.6` -> 0.6."""
    value = one_number(text, source, where)
    if "%" in text or value > 1:
        value /= 100
    if not 0 < value <= 1:
        raise InputError(
            source,
            where,
            f"a fraction between 0 and 1 (or a percentage) was expected, got {text.strip()!r}",
        )
    return value


PRECISIONS = {
    "fp32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp8": "fp8",
    "float8": "fp8",
    "e4m3": "fp8",
    "int8": "int8",
    "w8a8": "fp8",
    "fp4": "fp4",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
    "int4": "int4",
    "w4a16": "int4",
    "awq": "int4",
    "gptq": "int4",
}


def precision_of(text: str, source: str, where: str) -> str:
    squashed = re.sub(r"[\s_-]", "", text.lower())
    for name in sorted(PRECISIONS, key=len, reverse=True):
        if name in squashed:
            return PRECISIONS[name]
    raise InputError(
        source,
        where,
        f"precision {text.strip()!r} not understood (expected one of: "
        "FP32, BF16, FP16, FP8, INT8, FP4, INT4)",
    )
