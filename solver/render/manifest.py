"""manifest.json: what paraplan owns in one folder (the rules are in writer.py's docstring)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.render.writer import (
    LAUNCH_FOLDER,
    MANIFEST,
    PLAN_FOLDER_FILES,
    RUN_FOLDER_FILES,
    dump_json,
    sha256_of,
)

WRITTEN_BY = "paraplan"


@dataclass
class Manifest:
    """What paraplan owns in one folder: files (relative POSIX paths) with their sha256, files being
    put in place (`pending`, while a run writes) and subfolders it made or writes plan folders in."""

    sha256: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every path the run wrote, as it named them
    notes: list[str] = field(default_factory=list)

    def owns(self, folder: Path, rel: str) -> bool:
        """`rel` holds what paraplan wrote there (not through a symlinked subfolder)."""
        expected = {h for h in (self.sha256.get(rel), self.pending.get(rel)) if h}
        parents = Path(rel).parents
        through_link = any((folder / p).is_symlink() for p in list(parents)[:-1])
        return bool(expected) and not through_link and sha256_of(folder / rel) in expected

    def listed(self) -> set[str]:
        return set(self.sha256) | set(self.pending)

    def text(self) -> str:
        data: dict[str, Any] = {"written_by": WRITTEN_BY, "files": self.files,
                                "sha256": dict(sorted(self.sha256.items())), "folders": self.folders}
        if self.pending:
            data["pending"] = dict(sorted(self.pending.items()))
        if self.notes:
            data["notes"] = self.notes
        return dump_json(data)

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The paraplan manifest of `folder`; None when there is none (or the file is not one)."""
        path = folder / MANIFEST
        if sha256_of(path) is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            return None
        if data.get("written_by") != WRITTEN_BY:
            return _legacy(folder, data)
        try:
            return cls(sha256=_inside(data.get("sha256", {})), pending=_inside(data.get("pending", {})),
                       folders=[f for f in data.get("folders", []) if _is_name(f)],
                       files=[str(f) for f in data["files"]], notes=list(data.get("notes", [])))
        except (TypeError, ValueError, AttributeError):
            return None


def _is_name(name: Any) -> bool:
    """One plain file or folder name: no separator, not '.', '..' or hidden tricks."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\0" not in name)


def _inside(table: Any) -> dict[str, str]:
    """The entries of a manifest's hash table that name a file inside the folder (a manifest
    edited to list ../../somewhere is ignored there)."""
    return {rel: digest for rel, digest in dict(table).items()
            if isinstance(rel, str) and isinstance(digest, str) and all(map(_is_name, rel.split("/")))}


def _legacy(folder: Path, data: dict[str, Any]) -> Manifest | None:
    """A manifest of paraplan before hashes ({"files": [paths]}): it was written after every file
    it lists, so a listed paraplan output not modified since then is taken as paraplan's."""
    try:
        written_ns = (folder / MANIFEST).lstat().st_mtime_ns
    except OSError:
        return None
    known = {*PLAN_FOLDER_FILES, *RUN_FOLDER_FILES} - {MANIFEST}
    manifest = Manifest(files=[p for p in data["files"] if isinstance(p, str)])
    for listed in manifest.files:
        parts = listed.replace("\\", "/").split("/")
        rel = "/".join(parts[-2:]) if parts[-2:-1] == [LAUNCH_FOLDER] else parts[-1]
        if rel not in known and not rel.startswith(LAUNCH_FOLDER + "/"):
            continue
        with contextlib.suppress(OSError):
            if (folder / rel).lstat().st_mtime_ns <= written_ns and (digest := sha256_of(folder / rel)):
                manifest.sha256[rel] = digest
    if any(rel.startswith(LAUNCH_FOLDER + "/") for rel in manifest.sha256):
        manifest.folders.append(LAUNCH_FOLDER)
    return manifest
