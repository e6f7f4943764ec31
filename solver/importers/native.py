"""paraplan's own condition files (YAML/JSON), the format every source no other format recognizes
falls back to: nothing to import, but a condition whose `model:` names a Hugging Face config.json
gets that config mapped to an inline card, so the condition is self-contained (batch workers)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported
from solver.importers.hf_config import is_hf_config, model_from_hf
from solver.importers.source import ConditionData, Format, Source
from solver.inputs.loading import parse_mapping, read_text

NOT_RECOGNIZED = (
    "format not recognized (expected a seed markdown file, a JSON trio folder or "
    "hardware_env.json, a Hugging Face config.json or a paper deployment config)"
)


def recognizes(source: Source) -> bool:
    """Anything: the last format tried."""
    return True


def refuse_import(source: Source) -> Imported:
    """`paraplan import` on a paraplan file (or on an unknown mapping): nothing to import."""
    data = source.content
    raise InputError(
        str(source.path),
        "",
        "already a paraplan condition or plan: nothing to import"
        if "model" in data or "tp" in data or "schema_version" in data
        else NOT_RECOGNIZED,
    )


def condition_data(source: Source) -> ConditionData:
    data = source.content
    return inline_hf_model(data, source.path), str(source.path), source.path.stem


def _looks_like_path(model: str, condition: Path) -> bool:
    """`model:` names a config.json or its folder rather than a card: a .json name, a name ending in
    a path separator, or an existing folder (any other string is a card name: `/etc/passwd` is
    looked up as a card, never read)."""
    if model.endswith((".json", "/", "\\")):
        return True
    given = Path(model)
    try:
        return (given if given.is_absolute() else condition.parent / given).is_dir()
    except OSError:  # a name longer than the file system allows: a (bad) card name
        return False


def _config_path(model: str, condition: Path) -> Path:
    """The config.json a `model:` path names (a folder means its config.json), relative to the
    condition file; a missing one is an error naming the condition file and its `model:` key."""
    given = Path(model)
    target = given if given.is_absolute() else condition.parent / given
    if target.is_dir():
        target = target / "config.json"
    if not target.is_file():
        what = "no such file" if not target.exists() else "not a regular file"
        raise InputError(str(condition), "model", f"{model!r}: {what} ({target}); expected a Hugging "
                         "Face config.json (or its folder), relative to the condition file, or the "
                         "name of a model card")
    return target


def inline_hf_model(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """`model: path/to/config.json` or its folder (relative to the condition file) -> the mapped
    inline card."""
    model = data.get("model")
    if not (isinstance(model, str) and _looks_like_path(model, path)):
        return data
    target = Source(_config_path(model, path))
    config = parse_mapping(read_text(target.path), str(target.path))
    if not is_hf_config(config):
        raise InputError(
            str(path),
            "model",
            f"{model} is not a Hugging Face config.json (no 'architectures' or 'model_type')",
        )
    card, _ = model_from_hf(config, str(target.path), target.default_name)
    data = copy.deepcopy(data)
    data["model"] = card.data
    if card.assumptions:
        data["assumptions"] = list(data.get("assumptions", [])) + card.assumptions
    return data


FORMAT = Format(
    name="condition",
    yields="condition",
    recognizes=recognizes,
    read=refuse_import,
    condition=condition_data,
)
