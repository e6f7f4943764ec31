"""Read conditions and plans in the formats people already have.

    load_any_condition(path)   condition YAML/JSON, seed markdown (.md), the JSON trio (a folder or
                               its hardware_env.json), a condition whose `model:` is a path to a
                               Hugging Face config.json
    import_source(path)        the same sources as an `Imported` document (`paraplan import`), plus
                               a bare config.json (-> model card) and paper configs (-> short plan)
    load_any_plan(path, cond)  plan.json / short YAML, the Parallelism Strategy section of a seed
                               markdown file, a paper deployment config (`FILE.json#method`)

Formats are detected by extension and content, never by guessing at values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from solver.errors import InputError
from solver.importers.common import Imported
from solver.importers.hf_config import is_hf_config, model_from_hf
from solver.importers.paper_plans import import_paper_plan, is_paper_plan, split_method
from solver.importers.seed_json import HARDWARE_FILE, import_trio
from solver.importers.seed_markdown import import_markdown
from solver.inputs.condition import Condition, build_condition
from solver.inputs.loading import parse_mapping, read_text, validation_error

if TYPE_CHECKING:  # plans need the solver's modules (OR-Tools): imported when a plan is read
    from solver.document.plan import Plan
    from solver.review.check import ShortPlan


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan | ShortPlan
    notes: list[str] = field(default_factory=list)  # what the import could not carry over


def _default_name(path: Path) -> str:
    return path.parent.name if path.name == "config.json" else path.stem


def detect(path: Path) -> str:
    """markdown | trio | hf-config | paper | condition (plain YAML/JSON)."""
    if path.is_dir():
        return "trio"
    if path.suffix.lower() in (".md", ".markdown"):
        return "markdown"
    if path.name == HARDWARE_FILE:
        return "trio"
    if path.suffix.lower() == ".json" and path.is_file():
        data = parse_mapping(read_text(path), str(path))
        if is_paper_plan(data):
            return "paper"
        if is_hf_config(data):
            return "trio" if (path.parent / HARDWARE_FILE).is_file() else "hf-config"
    return "condition"


def import_source(path: Path | str) -> Imported:
    """Any supported source as an Imported document (condition, plan or model card)."""
    text = str(path)
    file_part, method = split_method(text)
    path = Path(file_part)
    kind = detect(path) if path.exists() else "missing"
    if kind == "missing":
        raise InputError(text, "", "file not found")
    if kind == "markdown":
        return import_markdown(read_text(path), str(path), path.stem)
    if kind == "trio":
        return import_trio(path if path.is_dir() else path.parent)
    if kind == "hf-config":
        card, precision = model_from_hf(
            parse_mapping(read_text(path), str(path)), str(path), _default_name(path)
        )
        if precision:
            card.read_only.append(
                f"weights precision stated by the config: {precision} (set it in the "
                "condition's precision.weights)"
            )
        return card
    if kind == "paper":
        return import_paper_plan(parse_mapping(read_text(path), str(path)), str(path), method)
    data = parse_mapping(read_text(path), str(path))
    raise InputError(
        str(path),
        "",
        "already a paraplan condition or plan: nothing to import"
        if "model" in data or "tp" in data or "schema_version" in data
        else "format not recognized (expected a seed markdown file, a JSON trio folder or "
        "hardware_env.json, a Hugging Face config.json or a paper deployment config)",
    )


def _inline_hf_model(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """`model: path/to/config.json` (relative to the condition file) -> the mapped inline card."""
    model = data.get("model")
    if not (isinstance(model, str) and model.endswith(".json")):
        return data
    target = Path(model) if Path(model).is_absolute() else path.parent / model
    config = parse_mapping(read_text(target), str(target))
    if not is_hf_config(config):
        raise InputError(
            str(path),
            "model",
            f"{model} is not a Hugging Face config.json (no 'architectures' or 'model_type')",
        )
    card, _ = model_from_hf(config, str(target), _default_name(target))
    data = copy.deepcopy(data)
    data["model"] = card.data
    if card.assumptions:
        data["assumptions"] = list(data.get("assumptions", [])) + card.assumptions
    return data


def condition_data(path: Path | str) -> tuple[dict[str, Any], str, str]:
    """Condition data from any supported source, unvalidated: (data, source, default name).

    For callers that validate themselves (batch, sweep); `load_any_condition` builds it."""
    path = Path(path)
    kind = detect(path) if path.exists() else "condition"
    if kind == "condition":
        data = parse_mapping(read_text(path), str(path))
        return _inline_hf_model(data, path), str(path), path.stem
    if kind == "hf-config":
        raise InputError(
            str(path),
            "",
            "a model config alone is not a condition (no hardware, workload "
            "or SLOs): name it in a condition (model: path/to/config.json) or run "
            "`paraplan import` on it for a model card",
        )
    if kind == "paper":
        raise InputError(
            str(path),
            "",
            "a paper deployment config is a plan: grade it with "
            "`paraplan check CONDITION FILE.json[#baseline_method]`",
        )
    imported = import_source(path)
    return imported.with_assumptions(), imported.source, _default_name(path)


def load_any_condition(path: Path | str) -> Condition:
    """A condition from any supported source (see the module docstring)."""
    return build_condition(*condition_data(path))


def _validated(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source, model) from None


def load_any_plan(path: Path | str, condition: Condition | None = None) -> LoadedPlan:
    """A plan to grade: plan.json, a short YAML, a markdown strategy section or a paper config."""
    from solver.review.check import ShortPlan, load_plan_file

    text = str(path)
    file_part, method = split_method(text)
    target = Path(file_part)
    if method is None or Path(text).exists():
        target, method = Path(text), None
    kind = detect(target) if target.exists() else "condition"
    if kind == "markdown":
        imported = import_markdown(read_text(target), str(target), target.stem).plan
        if imported is None:
            raise InputError(str(target), "", "no 'Parallelism Strategy' section: nothing to check")
    elif kind == "paper":
        card = condition.model if condition is not None else None
        imported = import_paper_plan(
            parse_mapping(read_text(target), str(target)), str(target), method, card
        )
    else:
        return LoadedPlan(load_plan_file(target))
    plan = _validated(ShortPlan, imported.data, imported.source)
    return LoadedPlan(plan, list(imported.read_only))
