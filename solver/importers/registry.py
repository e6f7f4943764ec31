"""Read conditions and plans in the formats people already have, through one list of formats.

    import_source(path)        any source as an `Imported` document (`paraplan import`): a condition,
                               a plan or a model card, whatever its format yields
    condition_data(path)       a condition's data, unvalidated (batch and sweep validate it themselves)
    load_any_condition(path)   the same, built: condition YAML/JSON, seed markdown (.md), the JSON
                               trio (a folder or its hardware_env.json), a condition whose `model:` is
                               a path to a Hugging Face config.json
    load_any_plan(path, cond)  plan.json / short YAML, the Parallelism Strategy section of a seed
                               markdown file, a paper deployment config (`FILE.json#method`)

Formats are detected by extension and content, never by guessing at values. Adding a format is one
module defining its `FORMAT` (solver/importers/source.py says what a format declares) and one line
in `FORMATS` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from solver.errors import InputError
from solver.importers import hf_config, native, paper_plans, seed_json, seed_markdown
from solver.importers.common import Imported
from solver.importers.source import ConditionData, Format, Source, split_method
from solver.inputs.condition import Condition, build_condition
from solver.inputs.loading import validation_error

if TYPE_CHECKING:  # plans need the solver's modules (OR-Tools): imported when a plan is read
    from solver.document.plan import Plan
    from solver.review.check import ShortPlan
    from solver.review.check_pools import PoolsShortPlan

# The formats in the order they are tried: the first that recognizes a source reads it.
FORMATS: tuple[Format, ...] = (
    seed_markdown.FORMAT,  # .md / .markdown
    seed_json.FORMAT,  # a folder, hardware_env.json, a config.json beside one
    paper_plans.FORMAT,  # JSON with `paper` and proposed_method / baseline_method
    hf_config.FORMAT,  # JSON with `architectures` or `model_type`
    native.FORMAT,  # paraplan's own YAML/JSON: recognizes anything, so it comes last
)


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan | ShortPlan | PoolsShortPlan
    notes: list[str] = field(default_factory=list)  # what the import could not carry over


def format_of(source: Source) -> Format:
    return next(f for f in FORMATS if f.recognizes(source))


def detect(path: Path) -> str:
    """The name of the format that reads `path`: markdown | trio | paper | hf-config | condition."""
    return format_of(Source(path)).name


def import_source(path: Path | str) -> Imported:
    """Any supported source as an Imported document (condition, plan or model card)."""
    text = str(path)
    file_part, method = split_method(text)
    source = Source(Path(file_part), method)
    if not source.path.exists():
        raise InputError(text, "", "file not found")
    return format_of(source).read(source)


def condition_data(path: Path | str) -> ConditionData:
    """Condition data from any supported source, unvalidated: (data, source, default name).

    For callers that validate themselves (batch, sweep); `load_any_condition` builds it."""
    source = Source(Path(path))
    found = format_of(source) if source.path.exists() else native.FORMAT
    if found.condition is not None:
        return found.condition(source)
    if found.yields != "condition":
        raise InputError(str(source.path), "", found.not_a_condition)
    imported = import_source(source.path)
    return imported.with_assumptions(), imported.source, source.default_name


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

    if condition is not None and condition.mixed is not None:  # hardware.pools: a replicas block
        from solver.review.mixed_check import load_mixed_plan

        given, notes = load_mixed_plan(path, condition)
        return LoadedPlan(given, notes)  # type: ignore[arg-type]
    text = str(path)
    file_part, method = split_method(text)
    target = Path(file_part)
    if method is None or Path(text).exists():
        target, method = Path(text), None
    source = Source(target, method, condition.model if condition is not None else None)
    found = format_of(source) if target.exists() else native.FORMAT
    if found.plan is None:
        return LoadedPlan(load_plan_file(target))
    imported = found.plan(source)
    plan = _validated(ShortPlan, imported.data, imported.source)
    return LoadedPlan(plan, list(imported.read_only))
