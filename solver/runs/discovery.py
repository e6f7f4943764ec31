"""Finding the condition files of a batch: named files, folders (recursively) and glob patterns,
each parsed by the driver into plain data a worker can build, and given a unique folder name."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.errors import ParaplanError
from solver.inputs.loading import parse_mapping, read_text
from solver.render.writer import RUN_FOLDER_FILES

CONDITION_KEYS = ("model", "hardware", "workload")
CONDITION_SUFFIXES = (".yaml", ".yml", ".json")
PLAN_SUFFIXES = (".plan.yaml", ".plan.yml", ".plan.json")


@dataclass
class Entry:
    """One input of the batch: a parsed condition, or why it could not be read."""

    source: str
    data: dict[str, Any] | None = None
    error: str = ""
    name: str = ""
    folder: str = ""
    default_name: str = ""
    missing: bool = False  # a named path that does not exist, or a pattern that matches nothing


def _is_plan_file(path: Path) -> bool:
    return path.name.lower().endswith(PLAN_SUFFIXES)


def condition_data(path: Path) -> tuple[dict[str, Any], str, str]:
    """(data, source, default name) of a condition file, self-contained (a `model:` that points at
    a Hugging Face config.json is inlined), so a worker on another machine can build it. Uses the
    importers' reader (seed markdown, JSON trio, ...) when present, else plain YAML/JSON."""
    try:
        from solver.importers.registry import condition_data as read_any
    except ImportError:
        return parse_mapping(read_text(path), str(path)), str(path), path.stem
    return read_any(path)


def _read(path: Path, named: bool) -> tuple[dict[str, Any] | None, str, str, bool]:
    """(data, error, default name, is a condition). Found in a folder or by a glob, a file is kept
    when it has the condition keys or cannot be parsed (then it is reported as broken rather than
    silently skipped); cards, plans and other mappings are not conditions."""
    try:
        if not named:
            plain = parse_mapping(read_text(path), str(path))
            if not all(k in plain for k in CONDITION_KEYS):
                return plain, "", path.stem, False
        data, _, default_name = condition_data(path)
        return data, "", default_name, True
    except ParaplanError as exc:
        return None, str(exc), path.stem, True
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}", path.stem, True


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in CONDITION_SUFFIXES and not _is_plan_file(path):
            found.append(path)
    return found


def _glob(pattern: str) -> list[Path]:
    """Matches of a glob pattern (`**` for any depth) that do not descend into symlinked folders,
    so a symlink loop cannot make it run forever; hidden files and folders are left out."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = "/".join(parts[fixed:])
    if not rest:
        return [root] if root.exists() else []
    try:
        found = sorted(root.glob(rest))
    except (OSError, ValueError):
        return []
    return [p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def _expand(matches: Sequence[Path]) -> Iterator[Path]:
    """Folders (recursively) and glob matches -> candidate condition files."""
    for match in matches:
        if match.is_dir():
            yield from _folder_files(match)
        elif match.suffix.lower() in CONDITION_SUFFIXES and not _is_plan_file(match):
            yield match


def discover(inputs: Sequence[str | Path]) -> tuple[list[Entry], list[str]]:
    """Expand files, folders (recursive) and globs into entries, in the order given.

    Named files are always tried. Files found in folders or by globs are kept when they parse to a
    mapping with the condition keys (model, hardware, workload), or fail to parse (reported);
    GPU and model cards, *.plan.yaml files and other mappings are skipped (and listed in `skipped`).
    """
    entries: list[Entry] = []
    skipped: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, named: bool) -> None:
        key = path.resolve()
        if key in seen:
            return
        data, error, default_name, is_condition = _read(path, named)
        if not is_condition:
            skipped.append(str(path))
            return
        seen.add(key)
        entries.append(Entry(str(path), data, error, default_name=default_name))

    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_file():
            add(path, named=True)
        elif path.is_dir() or glob.has_magic(text):
            matches = [path] if path.is_dir() else _glob(text)
            for found in _expand(matches):
                add(found, named=False)
            if not matches:
                entries.append(Entry(text, error=f"{text}: no file matches this pattern",
                                     missing=True))
        else:
            entries.append(Entry(text, error=f"{text}: no such file or folder", missing=True))
    _name_entries(entries)
    return entries, skipped


def safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in name).strip("._")
    return cleaned[:150] or "plan"


def _name_entries(entries: list[Entry]) -> None:
    """Row name = the condition's `name:` or the file stem; folder = a unique file-safe name."""
    used: set[str] = set()
    for e in entries:
        declared = e.data.get("name") if isinstance(e.data, dict) else None
        e.name = (
            declared
            if isinstance(declared, str) and declared.strip()
            else e.default_name or Path(e.source).stem
        )
        e.folder = unique_folder(safe_name(e.name), used)


def unique_folder(base: str, used: set[str]) -> str:
    folder, k = base, 2
    while folder.lower() in used or folder.lower() in RUN_FOLDER_FILES:
        folder, k = f"{base}-{k}", k + 1
    used.add(folder.lower())
    return folder
