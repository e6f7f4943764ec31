"""Every seed-format asset (and every Hugging Face config under tests/hf_configs) imports to exactly
what it did when the goldens were written: the text `paraplan import SOURCE` prints (or its error
and exit code), and the plan `paraplan check` grades for each paper config and markdown strategy.

The goldens in tests/importers/golden/ were written by the importers before they were split into
one module per format (issue 12), so a restructuring that changes any value, origin comment,
assumption or message fails here. Regenerate only for a deliberate change:
`PARAPLAN_WRITE_GOLDEN=1 python3 -m pytest tests/importers/test_golden_imports.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import load_any_condition, load_any_plan
from tests.paths import REPO

SEED = REPO / "tests" / "assets" / "seed-formats"
GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("PARAPLAN_WRITE_GOLDEN") == "1"
METHODS = ("", "#proposed_method", "#baseline_method")
runner = CliRunner()


def _sources() -> list[str]:
    """Paths relative to the repository, `#method` suffixes for the paper configs."""
    files = sorted(p for p in SEED.rglob("*")
                   if p.is_file() and p.suffix in (".md", ".json") and p.name != "README.md")
    found = [str(p.relative_to(REPO)) for p in files if p.parent.name != "paper-plans"]
    found.append(str((SEED / "json-trio").relative_to(REPO)))
    found += [f"{p.relative_to(REPO)}{m}" for p in files if p.parent.name == "paper-plans"
              for m in METHODS]
    found += sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "hf_configs").glob("*/*.json"))
    return found


# (condition, plan) pairs that `paraplan check` grades; conditions/paper holds the papers' models
GRADED = [
    ("conditions/paper/paper-moe-4l-h100x16.yaml", f"{SEED.relative_to(REPO)}/paper-plans/EP.json"),
    ("conditions/paper/paper-dense-16l-h100x16.yaml", f"{SEED.relative_to(REPO)}/paper-plans/PP.json"),
    ("conditions/paper/paper-dense-4l-h100x16.yaml", f"{SEED.relative_to(REPO)}/paper-plans/SP.json"),
    ("conditions/paper/paper-dense-4l-h100x16.yaml",
     f"{SEED.relative_to(REPO)}/paper-plans/helix.json"),
    (f"{SEED.relative_to(REPO)}/markdown/qwen3-235b-with-strategy.md",
     f"{SEED.relative_to(REPO)}/markdown/qwen3-235b-with-strategy.md"),
]


def _golden_name(source: str) -> str:
    """tests/assets/seed-formats/paper-plans/EP.json#baseline_method ->
    paper-plans__EP.json--baseline_method.txt"""
    short = source.removeprefix("tests/assets/seed-formats/").removeprefix("tests/")
    return short.replace("/", "__").replace("#", "--") + ".txt"


def _compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden {path.name}"
    assert text == path.read_text(encoding="utf-8")


def _relative(text: str) -> str:
    return text.replace(f"{REPO}/", "")


@pytest.mark.parametrize("source", _sources())
def test_paraplan_import_prints_what_it_did_before(source: str) -> None:
    result = runner.invoke(app, ["import", str(REPO / source)])
    _compare(_golden_name(source), f"exit {result.exit_code}\n{_relative(result.output)}")


def _graded(condition: str, plan: str) -> dict[str, object]:
    try:
        loaded = load_any_plan(str(REPO / plan), load_any_condition(REPO / condition))
    except InputError as exc:
        return {"error": _relative(str(exc))}
    return {"type": type(loaded.plan).__name__, "plan": json.loads(loaded.plan.model_dump_json()),
            "notes": loaded.notes}


@pytest.mark.parametrize("condition,plan", GRADED, ids=lambda s: Path(s).name)
def test_graded_plans_are_what_they_were(condition: str, plan: str) -> None:
    by_method = {m or "(default)": _graded(condition, plan + m)
                 for m in (METHODS if plan.endswith(".json") else ("",))}
    _compare("graded--" + _golden_name(plan).replace(".txt", ".json"),
             json.dumps(by_method, indent=1, sort_keys=True) + "\n")
