"""Atomic output: single files via temp file + rename; a plan folder via a temp folder + rename.

An interrupted run (SIGINT, crash) therefore leaves either the previous complete folder or the new
complete folder, never a mix and never a half-written file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from solver.errors import InputError

# What a run of paraplan may write into a plan folder: a new run replaces all of them, so an
# infeasible re-run never leaves an old plan.json beside its infeasibility.md.
PARAPLAN_OUTPUTS = frozenset({"plan.json", "plan.md", "balance.csv", "manifest.json", "report.html",
                              "infeasibility.md", "launch"})


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
    """Write every file plus manifest.json (listing them all, itself included) as one folder swap.

    Files are written into a hidden sibling folder, which then replaces `outdir`. Files already in
    `outdir` that this run does not produce are kept (moved into the new folder first).
    """
    outdir = Path(outdir)
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".tmp", dir=outdir.parent))
    except OSError as exc:
        raise InputError(str(outdir), "-o", f"cannot create the output folder: {exc.strerror}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp creates 0700; a plan folder is ordinary
    final = [outdir / name for name in files] + [outdir / "manifest.json"]
    try:
        for name, text in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
        (staging / "manifest.json").write_text(
            dump_json({"files": [str(p) for p in final]}), encoding="utf-8", newline="\n")
        _swap_in(staging, outdir, set(files) | {"manifest.json"})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _swap_in(staging: Path, outdir: Path, produced: set[str]) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise InputError(str(outdir), "-o", "exists and is not a folder")
    if not outdir.exists():
        os.rename(staging, outdir)
        return
    for item in outdir.iterdir():  # keep files the user put there; drop stale paraplan outputs
        if item.name in PARAPLAN_OUTPUTS or item.name in produced:
            continue
        if not (staging / item.name).exists():
            os.replace(item, staging / item.name)
    retired = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
    os.rename(outdir, retired)
    os.rename(staging, outdir)
    shutil.rmtree(retired, ignore_errors=True)
