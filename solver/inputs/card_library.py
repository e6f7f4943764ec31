"""Where model and GPU cards are found: the user's folders first, then the bundled cards.

Search order for a card named in a condition (`model: NAME`, `hardware.gpu: NAME`):

1. each `--cards DIR` given on the command line, in the order given;
2. each folder in the environment variable PARAPLAN_CARDS (separated by os.pathsep: `:` on
   Linux and macOS, `;` on Windows), in order;
3. the cards bundled with paraplan: inside an installed package `solver/data/models` and
   `solver/data/hardware` (package data, found with importlib.resources); in a source checkout
   (a clone, an editable install) the repository's `models/` and `conditions/hardware/`.

The first match wins, so a user's card may shadow a bundled one of the same name.

In a user folder, a card is told apart by where it sits or, for a file directly in the folder, by
its keys:
- `DIR/models/NAME.yaml` is a model card and `DIR/hardware/NAME.yaml` a GPU card;
- `DIR/NAME.yaml` is a model card when it has `num_hidden_layers` and a GPU card when it has
  `dense_tflops`. Asked for a card of one kind, a file of that name is read as that kind unless it
  is a card of the other kind or a condition (`workload:`), so a misspelt key in the card is
  reported against the card's file rather than as an unknown card.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from solver.errors import InputError
from solver.inputs.loading import read_mapping, validation_error

ENV_VAR = "PARAPLAN_CARDS"
Kind = Literal["model", "GPU"]
SUBFOLDER: dict[str, str] = {"model": "models", "GPU": "hardware"}  # in user folders and the wheel
CHECKOUT_FOLDER: dict[str, tuple[str, ...]] = {"model": ("models",), "GPU": ("conditions", "hardware")}
MARKER_KEY: dict[str, str] = {"model": "num_hidden_layers", "GPU": "dense_tflops"}
CARD_SUFFIX = ".yaml"

# --cards folders of this command (set by the CLI; batch and sweep workers get them in their tasks)
_COMMAND_DIRS: ContextVar[tuple[str, ...]] = ContextVar("paraplan_card_dirs", default=())


def bundled_folder(kind: Kind) -> Path:
    """The folder of bundled cards of a kind: package data in an installed paraplan, the
    repository folder in a source checkout."""
    package = resources.files("solver")
    inside = package / "data" / SUBFOLDER[kind]
    if inside.is_dir():
        return Path(str(inside))
    checkout = Path(str(package)).parent.joinpath(*CHECKOUT_FOLDER[kind])
    if checkout.is_dir():
        return checkout
    raise InputError("paraplan", "", f"the bundled {kind} cards are missing: neither "
                     f"solver/data/{SUBFOLDER[kind]} (installed package) nor "
                     f"{'/'.join(CHECKOUT_FOLDER[kind])} (source checkout) exists; reinstall paraplan")


def source_checkout() -> Path | None:
    """The repository root when paraplan runs from a clone or an editable install, else None."""
    root = Path(str(resources.files("solver"))).parent
    looks_like_repo = (root / "pyproject.toml").is_file() and (root / "models").is_dir()
    return root if looks_like_repo and (root / "conditions" / "hardware").is_dir() else None


@contextlib.contextmanager
def searching(dirs: Sequence[str | Path]) -> Iterator[None]:
    """Search these folders (after any already set, before PARAPLAN_CARDS) for this block."""
    checked = tuple(str(_user_folder(str(d), "--cards")) for d in dirs)
    token = _COMMAND_DIRS.set(_COMMAND_DIRS.get() + checked)
    try:
        yield
    finally:
        _COMMAND_DIRS.reset(token)


def _user_folder(text: str, where: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        reason = "no such folder" if not path.exists() else "not a folder"
        raise InputError(where, text, f"{reason} (a folder of card files: models/*.yaml, "
                         "hardware/*.yaml or cards directly in it)")
    return path.resolve()


def user_folders() -> list[tuple[Path, str]]:
    """(folder, where it came from) for --cards then PARAPLAN_CARDS, without repeats."""
    found: list[tuple[Path, str]] = [(Path(d), "--cards") for d in _COMMAND_DIRS.get()]
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            found.append((_user_folder(entry.strip(), ENV_VAR), ENV_VAR))
    unique: list[tuple[Path, str]] = []
    for folder, where in found:
        if folder not in (f for f, _ in unique):
            unique.append((folder, where))
    return unique


def command_folders() -> tuple[str, ...]:
    """Absolute --cards folders and PARAPLAN_CARDS folders, for tasks run in other processes."""
    return tuple(str(folder) for folder, _ in user_folders())


@dataclass(frozen=True)
class Location:
    """One place cards are searched: a user folder or the bundled cards."""

    label: str  # for messages: "bundled" or "<folder> (--cards)"
    folder: Path
    bundled: bool

    def find(self, kind: Kind, name: str) -> Path | None:
        if self.bundled:
            path = self.folder / f"{name}{CARD_SUFFIX}"
            return path if _is_file(path) else None
        nested = self.folder / SUBFOLDER[kind] / f"{name}{CARD_SUFFIX}"
        if _is_file(nested):
            return nested
        flat = self.folder / f"{name}{CARD_SUFFIX}"
        return flat if _is_file(flat) and _flat_kind(flat) in (kind, None) else None

    def names(self, kind: Kind) -> list[str]:
        if self.bundled:
            return sorted(p.name.removesuffix(CARD_SUFFIX) for p in self.folder.glob(f"*{CARD_SUFFIX}"))
        nested = {p.name.removesuffix(CARD_SUFFIX)
                  for p in (self.folder / SUBFOLDER[kind]).glob(f"*{CARD_SUFFIX}")}
        flat = {p.name.removesuffix(CARD_SUFFIX) for p in self.folder.glob(f"*{CARD_SUFFIX}")
                if _flat_kind(p) == kind}
        return sorted(nested | flat)


def _is_file(path: Path) -> bool:
    """is_file() that says False where it would raise (a name too long for the file system)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _flat_kind(path: Path) -> str | None:
    """The kind of a file directly in a user folder: "model" or "GPU" by its marker key, "other"
    for a condition; None when it cannot be told (unreadable, no marker or both): asked for by
    name, such a file is read as the kind asked for, and its errors name the file and key."""
    try:
        data = read_mapping(path)
    except InputError:
        return None
    if "workload" in data:
        return "other"
    kinds = [kind for kind, key in MARKER_KEY.items() if key in data]
    return kinds[0] if len(kinds) == 1 else None


def locations(kind: Kind) -> list[Location]:
    users = [Location(f"{folder} ({where})", folder, False) for folder, where in user_folders()]
    return [*users, Location("bundled", bundled_folder(kind), True)]


def find_card(kind: Kind, name: str) -> Path | None:
    """The file of the first card of this kind and name on the search path, or None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    for location in locations(kind):
        found = location.find(kind, name)
        if found is not None:
            return found
    return None


def known_cards(kind: Kind) -> dict[str, list[str]]:
    """Card names of a kind per search location (label -> names), in search order."""
    return {location.label: location.names(kind) for location in locations(kind)}


def unknown_card_reason(kind: Kind, name: str) -> str:
    """"unknown GPU card 'x' (did you mean 'y'?); known GPU cards, in search order: DIR (--cards):
    my-gpu; bundled: a100-sxm-80gb, ..." """
    known = known_cards(kind)
    every = sorted({n for names in known.values() for n in names})
    guess = difflib.get_close_matches(name, every, n=1, cutoff=0.5)
    hint = f" (did you mean '{guess[0]}'?)" if guess else ""
    return f"unknown {kind} card {name!r}{hint}; {known_cards_text(kind, known)}"


def known_cards_text(kind: Kind, known: dict[str, list[str]] | None = None) -> str:
    """"known GPU cards, in search order: DIR (--cards): my-gpu; bundled: a100-sxm-80gb, ..." """
    known = known_cards(kind) if known is None else known
    listing = "; ".join(f"{label}: {', '.join(names) or '(none)'}" for label, names in known.items())
    return f"known {kind} cards, in search order: {listing}"


def load_card(kind: Kind, name: str, card_type: type[BaseModel], source: str, key: str) -> Any:
    """The validated card; InputError naming the condition's key when no card has that name, or
    the card's file and key when the card itself is invalid."""
    path = find_card(kind, name)
    if path is None:
        raise InputError(source, key, unknown_card_reason(kind, name))
    data = read_mapping(path)
    try:
        return card_type.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path), card_type) from None
