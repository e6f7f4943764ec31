"""Atomic output: every file is written to a temporary sibling and renamed into place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from solver.errors import InputError


def write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_outputs(outdir: Path, files: dict[str, str]) -> list[Path]:
    """Write every file atomically, then manifest.json listing them all (itself included)."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(outdir), "-o", f"cannot create the output folder: {exc.strerror}") from None
    written = [write_atomic(outdir / name, text) for name, text in files.items()]
    manifest = outdir / "manifest.json"
    paths = [str(p) for p in written] + [str(manifest)]
    write_atomic(manifest, dump_json({"files": paths}))
    return written + [manifest]
