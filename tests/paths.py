"""Folders the tests read, relative to the repository (tests run from a clone alone)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "tests" / "assets"
CONDITIONS = REPO / "conditions"
