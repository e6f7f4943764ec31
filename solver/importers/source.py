"""What an importer is given (a `Source`) and what each format declares about itself (a `Format`).

Each format module (seed_markdown, seed_json, paper_plans, hf_config, native) defines one `FORMAT`;
registry.py lists them once, in the order they are tried, and every entry point (`paraplan import`,
conditions for solve/check/batch, plans for check) dispatches through that list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solver.importers.common import Imported
from solver.inputs.loading import parse_mapping, read_text

if TYPE_CHECKING:
    from solver.inputs.cards import ModelCard

# (data, source, default name): a condition not yet validated, for build_condition or a worker
ConditionData = tuple[dict[str, Any], str, str]


def split_method(path_text: str) -> tuple[str, str | None]:
    """`EP.json#baseline_method` -> ("EP.json", "baseline_method")."""
    if "#" in path_text:
        path, method = path_text.rsplit("#", 1)
        return path, method
    return path_text, None


@dataclass(frozen=True)
class Source:
    """A file or folder to import. `method` picks one plan of a file that holds several
    (`FILE.json#method`); `card` is the condition's model when a plan is read to grade it."""

    path: Path
    method: str | None = None
    card: ModelCard | None = None

    @property
    def default_name(self) -> str:
        """The name of what it yields when the source states none: a config.json is named by its
        folder, anything else by its file name."""
        return self.path.parent.name if self.path.name == "config.json" else self.path.stem

    @cached_property
    def content(self) -> dict[str, Any]:
        """The file parsed as a mapping (read once, whichever format asks first)."""
        return parse_mapping(read_text(self.path), str(self.path))

    @property
    def json(self) -> dict[str, Any] | None:
        """The content of a .json file; None for anything else (formats look inside JSON only)."""
        if self.path.suffix.lower() == ".json" and self.path.is_file():
            return self.content
        return None


@dataclass(frozen=True)
class Format:
    """One importable format: its name, how a source is recognized and what it yields."""

    name: str  # what `detect` answers
    yields: str  # condition | plan | model: what `paraplan import` makes of it
    recognizes: Callable[[Source], bool]
    read: Callable[[Source], Imported]  # the document `paraplan import` writes
    # The plan a source carries, for `paraplan check`; None: the path is read as a paraplan plan file.
    plan: Callable[[Source], Imported] | None = None
    # The condition of a source that is not imported first (paraplan's own files).
    condition: Callable[[Source], ConditionData] | None = None
    # Why a source that yields no condition cannot be one (the message of load_any_condition).
    not_a_condition: str = ""
