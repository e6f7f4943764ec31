"""Start-up (issue 11): which heavy libraries each command imports, not how long it takes.

Wall-clock ratios are measured by scripts/bench_startup.py; here the work is asserted: `--help`,
`schema`, `import` and every input error never import OR-Tools, pandas, pyarrow, Jinja2 or rich,
and a solve imports OR-Tools without pandas and pyarrow.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solver.inputs.condition import load_condition
from solver.planning.planner import solve
from solver.render.balance import balance_csv, balance_frame
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
HEAVY = ("ortools", "pandas", "pyarrow", "numpy", "jinja2", "rich", "typer", "pydantic")

# Runs the CLI like the console script and reports, at exit, which heavy top-level packages it loaded.
_PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: sys.stderr.write(
    "\\nLOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)) + "\\n"))
sys.argv = ["paraplan", *{args!r}]
from solver.entry import main
main()
"""


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -c code` in a fresh interpreter that imports this checkout's solver."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False, env=env)


def loaded_by(args: list[str], cwd: Path) -> tuple[int, list[str], str]:
    proc = run_python(_PROBE.format(heavy=HEAVY, args=args), cwd)
    marker = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED ")]
    assert marker, proc.stderr
    return proc.returncode, json.loads(marker[-1].removeprefix("LOADED ")), proc.stderr


def _condition_with(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "condition.yaml"
    text = (ROOT / "conditions" / "llama70b-h100x8.yaml").read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    """Not even pydantic: the CLI is plain click, and help validates nothing."""
    for args in (["--help"], ["solve", "--help"], ["sweep", "--help"]):
        code, loaded, err = loaded_by(args, tmp_path)
        assert code == 0 and loaded == [], (args, err)


def test_schema_imports_nothing_heavy(tmp_path: Path) -> None:
    code, loaded, err = loaded_by(["schema"], tmp_path)
    assert code == 0 and loaded == ["pydantic"], err


@pytest.mark.parametrize("mistake", ["missing file", "key typo", "unknown card"])
def test_input_errors_import_nothing_heavy(mistake: str, tmp_path: Path) -> None:
    if mistake == "missing file":
        path = tmp_path / "nowhere.yaml"
    elif mistake == "key typo":
        path = _condition_with(tmp_path, "workload:", "worklaod:")
    else:
        path = _condition_with(tmp_path, "gpu: h100-sxm-80gb", "gpu: h100-sxm-800gb")
    code, loaded, err = loaded_by(["solve", str(path)], tmp_path)
    assert code == 1 and "error:" in err
    assert set(loaded) <= {"pydantic"}, err  # conditions are validated by pydantic models


def test_import_of_a_seed_file_imports_nothing_heavy(tmp_path: Path) -> None:
    seed = ROOT / "tests" / "assets" / "seed-formats" / "markdown" / "qwen3-235b-ttft.md"
    code, loaded, err = loaded_by(["import", str(seed)], tmp_path)
    assert code == 0 and loaded == ["pydantic"], err


def test_dense_solve_imports_cp_sat_without_pandas(tmp_path: Path) -> None:
    condition = ROOT / "conditions" / "llama70b-h100x8.yaml"
    code, loaded, err = loaded_by(["solve", str(condition), "-o", str(tmp_path / "plan")], tmp_path)
    assert code == 0, err
    assert "ortools" in loaded and "jinja2" in loaded
    assert "pandas" not in loaded and "pyarrow" not in loaded and "rich" not in loaded
    assert "typer" not in loaded
    assert (tmp_path / "plan" / "report.html").is_file()


def test_cp_model_without_pandas_still_solves_and_serves_its_pandas_helpers() -> None:
    code = """
import sys
from solver.runtime.startup import import_cp_model
cp_model = import_cp_model()
assert "pandas" not in sys.modules and "pyarrow" not in sys.modules
model = cp_model.CpModel()
x = model.new_int_var(0, 10, "x")
model.add(x <= 7)
model.maximize(x)
solver = cp_model.CpSolver()
assert solver.solve(model) == cp_model.OPTIMAL and solver.value(x) == 7
assert "pandas" not in sys.modules
import pandas as pd
from tests.paths import REPO as REPO_ROOT
ys = model.new_int_var_series("y", pd.Index(range(3)), 0, 5)   # forwarded to the real pandas
assert isinstance(ys, pd.Series) and len(ys) == 3
model.add(sum(ys) >= 4)
assert solver.solve(model) == cp_model.OPTIMAL and int(solver.values(ys).sum()) >= 4
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("name", ["llama70b-h100x8", "qwen3-30b-a3b-h100x2", "mixtral8x7b-a100x4"])
def test_balance_csv_is_what_pandas_wrote(name: str) -> None:
    """balance.csv is written without pandas now; the bytes are those of DataFrame.to_csv."""
    condition = load_condition(ROOT / "conditions" / f"{name}.yaml")
    plan = solve(condition).plan
    buffer = io.StringIO()
    balance_frame(plan).to_csv(buffer, index=False, float_format="%.6g", lineterminator="\n")
    assert balance_csv(plan) == buffer.getvalue()


def test_the_fast_exit_runs_atexit_handlers_and_flushes_piped_output(tmp_path: Path) -> None:
    """entry.end skips the interpreter's teardown (os._exit), not what a program relies on at
    exit: the exit code, atexit handlers, and every byte of output written to a pipe."""
    code = """
import atexit, os, sys
real_exit = os._exit
os._exit = lambda status: (sys.stderr.write("FAST EXIT\\n"), sys.stderr.flush(), real_exit(status))
atexit.register(lambda: sys.stdout.write("atexit ran"))
sys.argv = ["paraplan", "schema"]
from solver.entry import main
main()
"""
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0 and "FAST EXIT" in proc.stderr, proc.stderr
    schema, marker = proc.stdout.rsplit("\n", 1)
    assert json.loads(schema)["type"] == "object" and marker == "atexit ran"
    missing = run_python(code.replace('"schema"', f'"solve", {str(tmp_path / "missing.yaml")!r}'), tmp_path)
    assert missing.returncode == 1 and "file not found" in missing.stderr and "FAST EXIT" in missing.stderr


def test_the_exit_waits_for_a_thread_still_running(tmp_path: Path) -> None:
    """A non-daemon thread alive when the command ends is waited for (the ordinary exit): here it
    starts its work only once entry.end has been called, and its file must exist afterwards."""
    done = tmp_path / "thread-finished"
    code = f"""
import sys, threading, time
from pathlib import Path
import solver.entry as entry
ended = threading.Event()
real_end = entry.end
entry.end = lambda code: (ended.set(), real_end(code))
work = lambda: (ended.wait(), time.sleep(0.2), Path({str(done)!r}).write_text("yes"))
threading.Thread(target=work).start()
sys.argv = ["paraplan", "solve", {str(tmp_path / "missing.yaml")!r}]
entry.main()
"""
    proc = run_python(code, tmp_path)
    assert proc.returncode == 1 and "file not found" in proc.stderr
    assert done.read_text() == "yes"
