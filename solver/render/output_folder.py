"""An output folder paraplan writes, locked for one run: what is whose, atomic commits, the
previous run's files retired, plan folders of a batch or sweep (the rules are in writer.py)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from solver.errors import InputError
from solver.render.manifest import Manifest
from solver.render.writer import (
    FINISHED,
    MANIFEST,
    Content,
    as_bytes,
    check_output_folder,
    is_temporary,
    is_writable,
    locked,
    open_locked,
    write_temporary,
)
from solver.runtime.interrupts import checkpoint, deferred_sigint


class OutputFolder:
    """A folder paraplan writes, locked for this run (see the module docstring)."""

    def __init__(self, path: Path, option: str = "-o") -> None:
        self.path = Path(path)
        self.option = option
        self.created = False  # this run made the folder
        self.previous = Manifest()
        self.has_manifest = False
        self.committed: list[Path] | None = None
        self.plan_folders: dict[str, list[Path]] = {}  # batch/sweep: written in this run
        self.notes: list[str] = []
        self.planned: list[str] = []  # batch/sweep: plan folders this run may write
        self._fd: int | None = None

    # -- opening
    def open(self) -> None:
        check_output_folder(self.path, self.option)
        try:
            self.created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
            if not is_writable(self.path):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            self.release()
            if self.created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise self._error(f"cannot write in this folder: {exc.strerror or exc}") from None
        previous = Manifest.read(self.path)
        self.has_manifest = previous is not None
        self.previous = previous or Manifest()
        self._remove_temporaries(self.path)
        for name in self.previous.folders:
            self._remove_temporaries(self.path / name, lock=True)

    def _lock(self) -> None:
        try:
            self._fd = open_locked(self.path)
        except BlockingIOError:
            raise self._error("another paraplan run (solve, batch or sweep) is writing this folder "
                              "right now; wait for it to finish or choose another folder") from None
        if self._fd is not None and os.stat(self.path).st_ino != os.fstat(self._fd).st_ino:
            self.release()  # the folder was removed (an empty one, by the run that made it) and made again
            raise self._error("another paraplan run removed this folder while this one opened it; "
                              "run again")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def _error(self, reason: str) -> InputError:
        return InputError(str(self.path), self.option, reason)

    def _remove_temporaries(self, folder: Path, lock: bool = False) -> None:
        """Temporaries of a killed run (only `.paraplan-tmp-*.tmp` regular files). `lock`: a
        subfolder, which a `solve -o` into it may be writing right now: only when it is free."""
        if folder.is_symlink() or not folder.is_dir():
            return
        with contextlib.ExitStack() as stack:
            if lock:
                try:
                    stack.enter_context(locked(folder))
                except (BlockingIOError, OSError):
                    return
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)

    # -- what is whose
    def conflicts(self, files: Iterable[str], folders: Iterable[str] = (),
                  folder_files: Iterable[str] = ()) -> list[str]:
        """Files this run may write that exist and are not paraplan's: `files` here, and the
        subfolders `folders` (launch/, plan folders) with `folder_files` in each."""
        found = [why for why in map(self._taken, files) if why]
        for name in folders:
            found += self._folder_conflicts(name, tuple(folder_files))
        return found

    def _taken(self, rel: str) -> str | None:
        """Why the file `rel` is not paraplan's to replace, or None."""
        path = self.path / rel
        if not os.path.lexists(path):
            return None
        if rel == MANIFEST:  # read again: this run may have written it already (plan_ahead)
            return None if Manifest.read(self.path) else f"{rel} already exists and is not paraplan's"
        if self.previous.owns(self.path, rel):
            return None
        if rel in self.previous.listed():
            return f"{rel} was changed since paraplan wrote it, so it is yours now"
        return f"{rel} already exists and paraplan did not write it"

    def _folder_conflicts(self, name: str, inside: tuple[str, ...]) -> list[str]:
        sub = self.path / name
        if not os.path.lexists(sub):
            return []
        if sub.is_symlink() or not sub.is_dir():
            return [f"{name} already exists and is not a folder paraplan made"]
        self._remove_temporaries(sub, lock=True)
        own = Manifest.read(sub)
        known = name in self.previous.folders or own is not None
        if not known and any(sub.iterdir()):
            return [f"{name}/ already exists and paraplan did not make it"]
        found = []
        for rel in inside:
            path = sub / rel
            if not os.path.lexists(path):
                continue
            mine = (own is not None if rel == MANIFEST
                    else (own is not None and own.owns(sub, rel))
                    or self.previous.owns(self.path, f"{name}/{rel}"))
            if not mine:
                found.append(f"{name}/{rel} already exists and paraplan did not write it")
        return found

    def refuse_conflicts(self, files: Iterable[str], folders: Iterable[str] = (),
                         folder_files: Iterable[str] = ()) -> None:
        found = self.conflicts(files, folders, folder_files)
        if found:
            shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
            raise self._error(f"{shown}. paraplan never overwrites or deletes files it did not "
                              "write: move them away or choose another folder")

    # -- writing
    def commit(self, files: Mapping[str, Content], notes: Iterable[str] = ()) -> list[Path]:
        """Put this run's files in place and retire the previous run's (see the module docstring).
        Returns the paths written, manifest.json last."""
        nested = [rel for rel in files if "/" in rel]  # launch/...
        self.refuse_conflicts([*files, MANIFEST], sorted({rel.split("/")[0] for rel in nested}))
        data = {rel: as_bytes(content) for rel, content in files.items()}
        new = {rel: hashlib.sha256(blob).hexdigest() for rel, blob in data.items()}
        subfolders = sorted({rel.split("/")[0] for rel in data if "/" in rel})
        temporaries: dict[str, Path] = {}
        made: list[Path] = []
        target = MANIFEST
        try:  # the manifest first: whatever is on disk after a kill, a manifest accounts for it
            self._write_manifest(Manifest(sha256=self.previous.sha256, pending=new,
                                          folders=sorted({*self._folders_kept([]), *subfolders}),
                                          files=self.previous.files))
            made = self._make_subfolders(subfolders)
            for target, blob in data.items():
                temporaries[target] = write_temporary((self.path / target).parent, blob)
        except OSError as exc:
            self._discard(temporaries.values(), made)
            raise self._error(f"cannot write {target}: {exc.strerror or exc}") from None
        except BaseException:
            self._discard(temporaries.values(), made)
            raise
        with deferred_sigint():
            written = self._put_in_place(temporaries, new, subfolders, list(notes))
        return written

    def _put_in_place(self, temporaries: dict[str, Path], new: dict[str, str],
                      subfolders: list[str], notes: list[str]) -> list[Path]:
        try:
            for k, (rel, tmp) in enumerate(temporaries.items()):
                os.replace(tmp, self.path / rel)
                if k == 0:
                    checkpoint("writing")
            notes += self._retire_previous(set(new), subfolders)
            paths = [self.path / rel for rel in new] + self._plan_folder_paths()
            manifest_path = self.path / MANIFEST
            self._write_manifest(Manifest(sha256=new, folders=self._folders_kept(subfolders),
                                          files=[str(p) for p in [*paths, manifest_path]],
                                          notes=notes))
        except OSError as exc:
            for tmp in temporaries.values():
                tmp.unlink(missing_ok=True)
            raise self._error(f"writing stopped at {exc.filename or 'a file'}: {exc.strerror}; "
                              "manifest.json lists every file paraplan wrote there") from None
        self.committed = [*paths, manifest_path]
        self.notes = notes
        return self.committed

    def clear(self) -> list[str]:
        """Remove every paraplan file here (those the user changed stay) and the manifest."""
        with deferred_sigint():
            notes = self._retire_previous(set(), [])
            (self.path / MANIFEST).unlink(missing_ok=True)
        return notes

    def _make_subfolders(self, names: list[str]) -> list[Path]:
        made = []
        for name in names:
            sub = self.path / name
            if not sub.exists():
                sub.mkdir()
                made.append(sub)
        return made

    def plan_ahead(self, folders: Iterable[str]) -> None:
        """Batch and sweep, before solving: list the plan folders this run may write, so that a
        run killed halfway leaves none that the next run does not know."""
        self.planned = sorted(set(folders))
        if self.planned:
            self._write_manifest(Manifest(
                sha256=self.previous.sha256, pending=self.previous.pending,
                folders=sorted({*self.previous.folders, *self.planned}), files=self.previous.files,
                notes=["a run is under way (or was killed): plan folders listed ahead"]))

    def _discard(self, temporaries: Iterable[Path], made: list[Path]) -> None:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
        for sub in made:
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):  # the manifest as it was (or none)
            if self.has_manifest:
                self._write_manifest(self.previous)
            elif (self.path / MANIFEST).exists() and Manifest.read(self.path) is not None:
                (self.path / MANIFEST).unlink()

    def _write_manifest(self, manifest: Manifest) -> None:
        tmp = write_temporary(self.path, manifest.text().encode("utf-8"))
        try:
            os.replace(tmp, self.path / MANIFEST)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _retire_previous(self, keep: set[str], subfolders: list[str]) -> list[str]:
        """Remove the previous run's files this run did not write again, when unchanged; empty
        subfolders it made; plan folders (batch/sweep) this run did not write. Returns notes."""
        notes = []
        for rel in sorted(self.previous.listed() - keep):
            path = self.path / rel
            if self.previous.owns(self.path, rel):
                path.unlink()
            elif os.path.lexists(path):
                notes.append(f"kept {path}: changed since paraplan wrote it, so it is yours now")
        for name in self.previous.folders:
            if name in subfolders or name in self.plan_folders:
                continue
            sub = self.path / name
            if sub.is_dir() and not sub.is_symlink() and Manifest.read(sub) is not None:
                notes += clear_plan_folder(sub, self.option)
            with contextlib.suppress(OSError):
                sub.rmdir()  # only when empty
        return notes

    def _folders_kept(self, subfolders: list[str]) -> list[str]:
        """Subfolders to list: made or written by this run or an earlier one, still there."""
        names = {*subfolders, *self.plan_folders, *self.previous.folders, *self.planned}
        return sorted(n for n in names if (self.path / n).is_dir() and not (self.path / n).is_symlink())

    def _plan_folder_paths(self) -> list[Path]:
        return [p for paths in self.plan_folders.values() for p in paths]

    # -- batch and sweep: a plan folder per condition or point
    def write_plan_folder(self, name: str, files: dict[str, Content]) -> list[Path]:
        folder = None
        try:
            with open_output(self.path / name, [*files, MANIFEST], option=self.option,
                             nested=True) as folder:
                folder.commit(files)
        finally:
            if folder is not None and folder.committed is not None:  # also when interrupted
                self.plan_folders[name] = folder.committed
        checkpoint("plan-folder")
        return self.plan_folders[name]

    def clear_plan_folder(self, name: str) -> list[str]:
        """A condition that failed in this run keeps no plan of an earlier run (files the user put
        in its folder stay). Returns notes."""
        sub = self.path / name
        if not sub.is_dir() or sub.is_symlink():
            return []
        try:
            notes = clear_plan_folder(sub, self.option)
        except InputError as exc:  # locked by another run, unreadable: say so, go on
            notes = [f"kept the earlier plan in {sub}: {exc.reason}"]
        if sub.is_dir():
            self.plan_folders.setdefault(name, [])
        return notes

    # -- interrupted
    def account(self) -> str:
        """What the folder holds after an interrupt, for the message."""
        if self.committed is not None:
            return f"{self.path} was written completely before stopping"
        if self.plan_folders:
            return (f"{len(self.plan_folders)} plan folder(s) finished and were kept in {self.path} "
                    f"(listed in its manifest.json); this run's summary and report were not written")
        return "nothing was written" + ("" if self.created else f"; {self.path} is as it was")

    def abandon(self) -> None:
        """After an exception: drop this run's temporaries; keep the manifest true to the plan
        folders already written; remove the folder when this run made it and left it empty."""
        self._remove_temporaries(self.path)
        if self.committed is None and self.planned:
            with contextlib.suppress(OSError):
                kept = self._folders_kept([])
                if kept or self.has_manifest:
                    self._write_manifest(Manifest(
                        sha256=self.previous.sha256, pending=self.previous.pending, folders=kept,
                        files=self.previous.files + [str(p) for p in self._plan_folder_paths()],
                        notes=["this run was interrupted: its summary was not written"]))
                else:
                    (self.path / MANIFEST).unlink()
        if self.created:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only when empty


class OutputInterrupted(KeyboardInterrupt):
    """Ctrl-C, with an account of what the output folder holds."""

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account


def clear_plan_folder(folder: Path, option: str = "-o") -> list[str]:
    """Remove the paraplan files of a plan folder (never the user's) and its manifest, then the
    folder when empty. Returns notes (files kept because the user changed them)."""
    if Manifest.read(folder) is None:
        return []  # nothing of paraplan's in it
    with open_output(folder, [], option=option, nested=True) as out:
        notes = out.clear()
    with contextlib.suppress(OSError):
        folder.rmdir()
    return notes


@contextmanager
def open_output(path: Path, files: Iterable[str], folders: Iterable[str] = (),
                folder_files: Iterable[str] = (), option: str = "-o",
                nested: bool = False) -> Iterator[OutputFolder]:
    """Check, create and lock an output folder, and refuse files that are not paraplan's, before
    anything is solved; `commit` on the yielded folder writes. An interrupt becomes an
    OutputInterrupted saying what was and was not written. `nested`: a plan folder of a batch or
    sweep (its folder's message speaks for it)."""
    folder = OutputFolder(path, option)
    folder.open()
    try:
        folder.refuse_conflicts(files, folders, folder_files)
        yield folder
        if folder.committed is not None and not nested:
            FINISHED.append(folder.path)
    except KeyboardInterrupt:
        folder.abandon()
        raise OutputInterrupted(folder.account()) from None
    except BaseException:
        folder.abandon()
        raise
    finally:
        folder.release()


def write_outputs(outdir: Path, files: dict[str, Content]) -> list[Path]:
    """Write one plan folder (files plus manifest.json) in one go."""
    with open_output(outdir, [*files, MANIFEST]) as folder:
        return folder.commit(files)
