"""Seeded fuzzing of condition loading with the mutator of scripts/fuzz.py (no hypothesis needed).

1,000 mutated bundled conditions go straight to `load_condition` (fast): each must load or raise a
ParaplanError naming the file; any other exception fails the test and prints the input. A smaller
sample goes through `paraplan solve` (CliRunner), which must exit 0, 1 or 2 without a traceback.
A failing case replays alone: python scripts/fuzz.py --seed S --case I --show
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from types import ModuleType

import pytest

from tests.paths import REPO as REPO_ROOT

REPO = REPO_ROOT


def _load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paraplan_fuzz", REPO / "scripts" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()

LIBRARY_CASES = 1_000
CLI_CASES = 30


def _report(failures: list) -> str:
    return "\n\n".join(f"=== {outcome.kind}\n{fuzz.describe(case)}\n{outcome.detail}"
                       for case, outcome in failures[:5])


def test_mutator_is_deterministic() -> None:
    for i in (0, 1, 17, 999):
        a, b = fuzz.make_case(3, i), fuzz.make_case(3, i)
        assert (a.content, a.suffix, a.mutations) == (b.content, b.suffix, b.mutations)
    assert fuzz.make_case(3, 0).content != fuzz.make_case(4, 0).content


def test_mutator_covers_every_kind_of_mutation() -> None:
    seen: Counter[str] = Counter()
    bases: set[str] = set()
    suffixes: set[str] = set()
    for i in range(600):
        case = fuzz.make_case(0, i)
        bases.add(case.base)
        suffixes.add(case.suffix)
        for mutation in case.mutations:
            seen[mutation.split()[0]] += 1
    for kind in ("delete", "value", "rename", "add", "duplicate", "inline", "toggle", "scale",
                 "expert_load", "junk", "truncate", "flip", "indent"):
        assert seen[kind] > 0, (kind, seen)
    assert suffixes == {".yaml", ".json"}
    assert len(bases) == len(list((REPO / "conditions").glob("*.yaml")))


@pytest.mark.parametrize("seed", [0, 1])
def test_library_fuzz(seed: int) -> None:
    counts, failures, _ = fuzz.run(range(LIBRARY_CASES // 2), seed, fuzz.run_library_case)
    assert not failures, f"{len(failures)} cases broke the contract:\n{_report(failures)}"
    # the mutator is neither too gentle nor too harsh: both outcomes occur
    assert counts["ok"] >= 10, counts
    assert counts["input_error"] >= LIBRARY_CASES // 4, counts


def test_cli_fuzz_sample() -> None:
    bases = [fuzz.CONDITIONS_DIR / f"{n}.yaml" for n in fuzz.FAST_CONDITIONS
             if (fuzz.CONDITIONS_DIR / f"{n}.yaml").is_file()]
    counts, failures, _ = fuzz.run(range(CLI_CASES), 0,
                                lambda case, tmp: fuzz.run_cli_case(case, tmp, time_limit=2.0),
                                bases)
    assert not failures, f"{len(failures)} cases broke the contract:\n{_report(failures)}"
    assert counts["ok"] + counts["input_error"] + counts["infeasible"] == CLI_CASES, counts


def test_fuzz_script_summary_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--cases", "20", "--seed", "5"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("20 cases, 0 tracebacks"), line
