"""Finding the conditions of a batch: named files, folders, globs; cards, plans, hidden folders and
other mappings skipped; broken files kept to be reported; unique folder names."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.runs.discovery import discover, safe_name, unique_folder
from tests.runs.inputs import QUICK, make_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


def test_discovery_keeps_conditions_and_broken_files_and_skips_the_rest(inputs: Path) -> None:
    entries, skipped = discover(
        [
            inputs,
            inputs / "llama70b-h100x8.yaml",
            inputs / "missing.yaml",
            str(inputs / "*.nothing"),
        ]
    )
    sources = [Path(e.source).name for e in entries]
    assert sorted(sources[: len(QUICK) + 2]) == sorted(
        [p.name for p in QUICK] + ["broken.yaml", "infeasible.json"]
    )
    assert sources.count("llama70b-h100x8.yaml") == 1  # named again: not solved twice
    assert {Path(s).name for s in skipped} == {"h100-sxm-80gb.yaml", "notes.json"}
    assert not any(".plan." in s or "copy.yaml" in s for s in sources)
    errors = {Path(e.source).name: e.error for e in entries if e.error}
    assert "line" in errors["broken.yaml"]
    assert errors["missing.yaml"].endswith("no such file or folder")
    assert [Path(e.source).name for e in entries if e.missing] == ["missing.yaml", "*.nothing"]
    assert "no file matches" in errors["*.nothing"]
    assert len({e.folder for e in entries}) == len(entries)  # unique output folders


def test_folder_names_are_file_safe_and_unique() -> None:
    used: set[str] = set()
    assert [unique_folder(safe_name(n), used) for n in ("a/b", "a_b", "A_B", "report.html")] == [
        "a_b", "a_b-2", "A_B-3", "report.html-2"]
