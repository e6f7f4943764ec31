"""Output folders: paraplan's own files, written one by one and atomically, under a manifest.

The rules (docs/design.md, "Outputs"):
- `-o` is checked before anything is solved: not the current folder or one of its parents, not the
  home folder, not the root of a filesystem, not a file. A missing folder is created; an existing
  one is kept as it is (inode, owner, mode; a symlink stays a symlink).
- manifest.json records the files a run wrote with their sha256 (`sha256`) and the subfolders it
  made or wrote plan folders into (`folders`). A file is paraplan's when a manifest lists it with
  its current content; anything else is the user's and is never overwritten, moved or deleted. A
  file paraplan would write that exists and is not paraplan's stops the run before solving.
- Writing: the manifest is rewritten with the new files as `pending`; every file goes to a
  temporary `.paraplan-tmp-*.tmp` beside its target; the temporaries are renamed over their
  targets (with Ctrl-C held back: a few renames); the previous run's files that this run did not
  write again are removed when unchanged (kept, with a note, when the user edited them); the final
  manifest lists this run's files. A run killed at any moment leaves only files a manifest accounts
  for, plus its temporaries, which the next run removes.
- One run at a time per folder: an exclusive `flock` on the folder; a second run (solve, batch or
  sweep) stops at once with a message naming the folder.

This module holds the list of every file paraplan writes and the file operations underneath;
manifest.py reads and writes manifest.json, output_folder.py applies the rules to a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from solver.errors import InputError

MANIFEST = "manifest.json"
TEMP_PREFIX = ".paraplan-tmp-"
TEMP_SUFFIX = ".tmp"

# Everything paraplan writes, in one place. A plan folder (solve; one per condition of a batch):
PLAN_JSON = "plan.json"
PLAN_MD = "plan.md"
BALANCE_CSV = "balance.csv"
REPORT_HTML = "report.html"  # also the page of a batch or sweep
PLAN_FILES = (PLAN_JSON, PLAN_MD, BALANCE_CSV, REPORT_HTML)
INFEASIBILITY_FILE = "infeasibility.md"
LAUNCH_FOLDER = "launch"  # solve --export: one file per engine launch
LAUNCH_FILES = ("vllm.sh", "sglang.sh", "trtllm.yaml", "trtllm.sh")
PLAN_FOLDER_FILES = (*PLAN_FILES, INFEASIBILITY_FILE, MANIFEST)
# The folder of a batch or sweep, beside one plan folder per condition or point:
SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_FILES = (SUMMARY_CSV, SUMMARY_PARQUET, REPORT_HTML)
PARETO_CHART = "pareto.svg"  # sweeps only
RUN_FOLDER_FILES = (*SUMMARY_FILES, PARETO_CHART, MANIFEST)

Content = str | bytes
# Output folders this process finished (solve's plan folder, a batch or sweep folder), for an
# honest message when Ctrl-C comes after them.
FINISHED: list[Path] = []


def launch_path(name: str) -> str:
    """launch/NAME, as a plan folder holds it (NAME one of LAUNCH_FILES)."""
    return f"{LAUNCH_FOLDER}/{name}"


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def sha256_of(path: Path) -> str | None:
    """The hash of a regular file (not following a symlink); None for anything else."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def as_bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def is_writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def is_temporary(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def write_temporary(folder: Path, data: bytes) -> Path:
    """A new temporary file in `folder` holding `data`, with an ordinary file's mode."""
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        if hasattr(os, "fchmod"):  # POSIX: mkstemp makes 0600; a plan file is ordinary
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_atomic(path: Path, text: str) -> Path:
    """One file (import, calibrate): a temporary beside it, then a rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temporary(path.parent, as_bytes(text))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---- locking a folder ---------------------------------------------------------------------------


def open_locked(folder: Path) -> int | None:
    """A descriptor of `folder` holding an exclusive flock (closing it drops the lock); None where
    there is no flock (Windows). BlockingIOError when another process holds it."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold a subfolder's lock for a moment."""
    fd = open_locked(folder)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


# ---- checking -o ---------------------------------------------------------------------------------


def _refusal(path: Path) -> tuple[str, bool] | None:
    """Why `path` cannot be an output folder (and whether it is one that holds the user's other
    files: the current folder, a parent, home, a filesystem root), or None."""
    resolved = Path(os.path.realpath(path))
    cwd = Path(os.path.realpath(os.getcwd()))
    if resolved == cwd:
        return f"is the current folder ({resolved})", True
    if resolved.parent == resolved or os.path.ismount(resolved):
        return f"is the root of a filesystem ({resolved})", True
    with contextlib.suppress(RuntimeError, KeyError):
        if resolved == Path(os.path.realpath(Path.home())):
            return f"is the home folder ({resolved})", True
    if cwd.is_relative_to(resolved):
        return f"is a parent of the current folder ({resolved})", True
    if path.is_symlink() and not path.exists():
        return f"is a symbolic link to {os.readlink(path)}, which does not exist", False
    if path.exists() and not path.is_dir():
        return "exists and is not a folder", False
    return None


def check_output_folder(path: Path, option: str = "-o") -> None:
    """Refuse, before any solving, an output folder paraplan must not write into."""
    refusal = _refusal(Path(path))
    if refusal is None:
        return
    reason, shared = refusal
    if shared:
        reason += ("; paraplan writes its files into the output folder and removes its earlier "
                   "ones there: give it a folder of its own, e.g. -o plans/NAME")
    raise InputError(str(path) if str(path) not in ("", ".") else f"'{path}'", option, reason)
