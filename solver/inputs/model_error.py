"""The cost model's stated error for a model on a GPU (solver/inputs/model_error.yaml, generated
from the calibration by scripts/accuracy.py; solver/calibration/error_bands.py computes it).

The most specific group with enough held-out rows wins: the model's family on this GPU, the family
on every GPU, models of its class (dense or MoE) on this GPU, the class, this GPU, every row. A
model belongs to a calibrated family when its card is one the family was measured with or its
name starts with the family's name (`mixtral-8x22b`, `mixtral-46.7b` imported from a config).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

DATA_FILE = "model_error.yaml"


@dataclass(frozen=True)
class ErrorBand:
    """A relative error (0.185 = 18.5%) and what it is: the statistic, the group and its rows."""

    fraction: float
    basis: str


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    text = resources.files("solver.inputs").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader


def _family(model_name: str, doc: dict[str, Any]) -> str | None:
    name = model_name.lower()
    for family, entry in doc["families"].items():
        if name in entry["cards"] or name.startswith(family.lower()):
            return family
    return None


def _lookup(doc: dict[str, Any], group: str, key: list[str]) -> dict[str, Any] | None:
    found = next((g for g in doc[group] if g["key"] == key), None)
    return found if found is not None and found["rows"] >= doc["min_rows"] else None


def error_band(model_name: str, is_moe: bool, gpu_name: str) -> ErrorBand:
    """The stated error of predicted output throughput for this model on this GPU."""
    doc = _document()
    family = _family(model_name, doc)
    kind = "moe" if is_moe else "dense"
    kind_label = "MoE" if is_moe else "dense"
    tries = ([("family_gpu", [family, gpu_name], f"{family} on {gpu_name}"),
              ("family", [family], f"{family} on every calibrated GPU")] if family else [])
    tries += [("class_gpu", [kind, gpu_name], f"{kind_label} models on {gpu_name}"),
              ("class", [kind], f"{kind_label} models on every calibrated GPU"),
              ("gpu", [gpu_name], f"every model on {gpu_name}")]
    for group, key, what in tries:
        found = _lookup(doc, group, key)
        if found is not None:
            return ErrorBand(found["error"], f"held-out median error of {doc['metric']} for {what} "
                                             f"({found['rows']} rows; docs/accuracy.md)")
    overall = doc["overall"]
    return ErrorBand(overall["error"], f"held-out median error of {doc['metric']} over every "
                                       f"measurement ({overall['rows']} rows; docs/accuracy.md)")
