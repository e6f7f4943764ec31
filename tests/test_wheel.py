"""The package people install (issue 11): a wheel built from this checkout, installed into a fresh
virtual environment outside the repository, solves conditions from an unrelated folder with the
bundled cards, with `--cards` and with PARAPLAN_CARDS.

The wheel is built from a copy of what the package needs (pyproject.toml, README.md, solver/,
models/, conditions/hardware/), so the build leaves nothing in the checkout. The venv gets no pip
and no dependencies of its own: the wheel is installed by this interpreter's pip
(`pip --python VENV/bin/python`), and a .pth file points the venv at this interpreter's
site-packages for ortools, pydantic and the rest, so nothing is downloaded but the build backend
(setuptools, which pip's isolated build fetches or takes from its cache). Every run checks that
`solver` is imported from the venv, not from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO as REPO_ROOT

try:
    import fcntl  # the lock that lets pytest-xdist workers share one build
except ImportError:  # Windows: each worker builds its own
    fcntl = None  # type: ignore[assignment]

ROOT = REPO_ROOT
PACKAGE_INPUTS = ("pyproject.toml", "README.md", "solver", "models", "conditions/hardware")
CONDITION = ROOT / "conditions" / "llama70b-h100x8.yaml"


@dataclass(frozen=True)
class Installed:
    python: Path
    paraplan: Path
    site_packages: Path
    wheel: Path


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout, check=False)


def _copy_package_inputs(src: Path) -> None:
    for name in PACKAGE_INPUTS:
        source, target = ROOT / name, src / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _build_wheel(src: Path, dist: Path) -> Path:
    """pip's isolated build (fetches setuptools if not cached); else this interpreter's setuptools."""
    isolated = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src], src)
    if isolated.returncode != 0:
        local = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                      "-w", dist, src], src)
        if local.returncode != 0:
            backend_missing = any(
                text in isolated.stderr
                for text in ("Could not find a version", "No matching distribution",
                             "Failed to establish a new connection", "Network is unreachable"))
            if backend_missing and "invalid command 'bdist_wheel'" in local.stderr + local.stdout:
                pytest.skip("cannot build a wheel here: pip cannot fetch setuptools/wheel for an "
                            "isolated build and this interpreter has no `wheel` package:\n"
                            + isolated.stderr[-1500:])
            raise AssertionError(f"wheel build failed:\n{isolated.stderr[-3000:]}\n"
                                 f"{local.stderr[-3000:]}")
    wheels = sorted(dist.glob("paraplan-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _dependency_paths() -> list[str]:
    """This interpreter's site-packages folders: where ortools, pydantic, ... are installed."""
    paths = [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    user = site.getusersitepackages()
    paths += [user] if isinstance(user, str) else []
    root = ROOT.resolve()
    unique = []
    for path in dict.fromkeys(paths):
        resolved = Path(path).resolve()
        if resolved.is_dir() and root not in (resolved, *resolved.parents):
            unique.append(str(resolved))
    return unique


def _install(base: Path) -> Installed:
    """Build the wheel and install it into a fresh virtual environment, both under `base`."""
    src, dist, venv = base / "src", base / "dist", base / "venv"
    _copy_package_inputs(src)
    wheel = _build_wheel(src, dist)
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], base)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {made.stderr[-1500:]}")
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              base).stdout.strip())
    (site_packages / "_paraplan_test_dependencies.pth").write_text(
        "\n".join(_dependency_paths()) + "\n", encoding="utf-8")
    pip = _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                "--no-index", wheel], base)
    assert pip.returncode == 0, pip.stderr
    paraplan = bindir / ("paraplan.exe" if os.name == "nt" else "paraplan")
    assert paraplan.is_file()
    return Installed(python, paraplan, site_packages, wheel)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One wheel and environment per test run. Under pytest-xdist the workers often split these
    tests between them: the first to get here builds under a lock in the run's shared temporary
    folder and writes down what it built (or why it skipped); the others wait and reuse it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None or fcntl is None:
        return _install(tmp_path_factory.mktemp("wheel"))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's
    record = shared / "paraplan-wheel.json"
    with (shared / "paraplan-wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.is_file():
            try:
                built = _install(shared / f"paraplan-wheel-{worker}")
            except pytest.skip.Exception as skipped:
                record.write_text(json.dumps({"skip": str(skipped)}), encoding="utf-8")
                raise
            record.write_text(json.dumps({k: str(v) for k, v in asdict(built).items()}),
                              encoding="utf-8")
            return built
    data = json.loads(record.read_text(encoding="utf-8"))
    if "skip" in data:
        pytest.skip(data["skip"])
    return Installed(**{k: Path(v) for k, v in data.items()})


def _env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (it would put this checkout on the path) and no inherited card folders."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PARAPLAN_CARDS")}
    return {**env, **extra}


def _elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "unrelated" / "work"
    folder.mkdir(parents=True)
    return folder


def test_wheel_carries_cards_and_templates(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for card in (ROOT / "models").glob("*.yaml"):
        assert f"solver/data/models/{card.name}" in names
    for card in (ROOT / "conditions" / "hardware").glob("*.yaml"):
        assert f"solver/data/hardware/{card.name}" in names
    for template in (ROOT / "solver" / "render" / "templates").glob("*.j2"):
        assert f"solver/render/templates/{template.name}" in names
    assert "solver/inputs/model_error.yaml" in names  # the stated error per family and GPU
    assert not [n for n in names if n.startswith(("tests/", "conditions/", "models/", "docs/"))]


def test_installed_package_solves_a_bundled_condition_elsewhere(installed: Installed,
                                                                tmp_path: Path) -> None:
    work = _elsewhere(tmp_path)
    shutil.copy2(CONDITION, work / "condition.yaml")
    where = _run([installed.python, "-c", "import solver; print(solver.__file__)"], work, _env())
    assert Path(where.stdout.strip()).is_relative_to(installed.site_packages), where.stdout
    run = _run([installed.paraplan, "solve", "condition.yaml", "-o", "out"], work, _env())
    assert run.returncode == 0, run.stderr
    assert "optimal:" in run.stdout
    for name in ("plan.json", "plan.md", "balance.csv", "report.html", "manifest.json"):
        assert (work / "out" / name).is_file(), name
    assert "<svg" in (work / "out" / "report.html").read_text(encoding="utf-8")


def test_installed_package_lists_bundled_cards_for_an_unknown_one(installed: Installed,
                                                                  tmp_path: Path) -> None:
    work = _elsewhere(tmp_path)
    text = CONDITION.read_text(encoding="utf-8").replace("model: llama-3.1-70b", "model: llama-9")
    (work / "condition.yaml").write_text(text, encoding="utf-8")
    run = _run([installed.paraplan, "solve", "condition.yaml"], work, _env())
    assert run.returncode == 1
    assert "unknown model card 'llama-9'" in run.stderr
    assert "bundled: deepseek-v3, gpt-oss-120b," in run.stderr and "qwen3-30b-a3b" in run.stderr
    assert not (work / "plans").exists()


def test_installed_package_uses_cards_folders(installed: Installed, tmp_path: Path) -> None:
    work = _elsewhere(tmp_path)
    cards = tmp_path / "my-cards"
    gpu = yaml.safe_load((ROOT / "conditions" / "hardware" / "h100-sxm-80gb.yaml").read_text())
    model = yaml.safe_load((ROOT / "models" / "llama-3.1-70b.yaml").read_text())
    (cards / "hardware").mkdir(parents=True)
    (cards / "models").mkdir()
    (cards / "hardware" / "h100-nvl-94gb.yaml").write_text(
        yaml.safe_dump({**gpu, "name": "h100-nvl-94gb", "memory_gb": 94}), encoding="utf-8")
    (cards / "models" / "my-llama.yaml").write_text(
        yaml.safe_dump({**model, "name": "my-llama"}), encoding="utf-8")
    text = CONDITION.read_text(encoding="utf-8").replace("model: llama-3.1-70b", "model: my-llama")
    (work / "condition.yaml").write_text(text.replace("gpu: h100-sxm-80gb", "gpu: h100-nvl-94gb"),
                                         encoding="utf-8")
    option = _run([installed.paraplan, "solve", "condition.yaml", "--cards", cards, "-o", "a"],
                  work, _env())
    assert option.returncode == 0, option.stderr
    plan = (work / "a" / "plan.md").read_text(encoding="utf-8")
    assert "my-llama" in plan and "h100-nvl-94gb" in plan
    env = _run([installed.paraplan, "solve", "condition.yaml", "-o", "b"], work,
               _env(PARAPLAN_CARDS=str(cards)))
    assert env.returncode == 0, env.stderr
    missing = _run([installed.paraplan, "solve", "condition.yaml", "-o", "c"], work, _env())
    assert missing.returncode == 1 and "unknown model card 'my-llama'" in missing.stderr


def test_installed_calibrate_asks_for_the_measurements(installed: Installed, tmp_path: Path) -> None:
    """docs/calibration/measured.csv belongs to a source checkout, not to the installed package."""
    run = _run([installed.paraplan, "calibrate"], _elsewhere(tmp_path), _env())
    assert run.returncode == 1
    assert "MEASURED" in run.stderr and "docs/calibration/measured.csv" in run.stderr
