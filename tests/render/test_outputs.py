"""Output folders under attack (issue 10): the user's files survive every run, refusal and race.

Every test counts and hashes the user's entries (files, folders, symlinks, modes) before and after,
with the helpers of scripts/fuzz_outputs.py, and checks that manifest.json accounts for every file
paraplan wrote. Runs go through CliRunner where no signal or second process is involved.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.render.writer import check_output_folder
from tests.corpus import load_script
from tests.paths import REPO as REPO_ROOT

attack = load_script("fuzz_outputs")
ROOT = REPO_ROOT
FAST = ROOT / "conditions" / "llama8b-l40sx2.yaml"
MOE = ROOT / "conditions" / "mixtral8x7b-a100x4.yaml"


def invoke(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder (.git, sources, a read-only folder, symlinks); the working folder
    and $HOME are beside it, so nothing outside tmp_path is ever at stake."""
    folder = tmp_path / "project"
    attack.prefill(folder, random.Random(3), conflicts=False)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    yield folder
    (folder / "ro").chmod(0o755)


def _check(root: Path, user: dict, finished: bool = True) -> None:
    assert not attack.user_changes(user, attack.snapshot(root))
    assert not attack.unaccounted(root, user, finished=finished)


# ---- solve into a user's folder ------------------------------------------------------------------


def test_solve_and_rerun_in_a_user_folder_keep_every_user_file(project: Path) -> None:
    """Into the folder itself: the folder keeps its inode and mode; --export's launch/ goes when a
    later run does not export; an infeasible re-run replaces the plan by infeasibility.md."""
    project.chmod(0o750)
    user, inode = attack.snapshot(project.parent), project.stat().st_ino
    assert invoke("solve", FAST, "-o", project, "--export").exit_code == 0
    assert (project / "launch" / "vllm.sh").is_file()
    assert invoke("solve", FAST, "-o", project).exit_code == 0
    assert not (project / "launch").exists()
    _check(project.parent, user)
    infeasible = invoke("solve", ROOT / "tests/assets/good/infeasible-405b-l40sx2.yaml", "-o", project)
    assert infeasible.exit_code == 2
    assert not (project / "plan.json").exists() and (project / "infeasibility.md").is_file()
    _check(project.parent, user)
    assert project.stat().st_ino == inode and project.stat().st_mode & 0o777 == 0o750


def test_a_symlinked_output_folder_stays_a_symlink(project: Path) -> None:
    link = project.parent / "plans-link"
    link.symlink_to(project / "src")
    user = attack.snapshot(project.parent)
    assert invoke("solve", FAST, "-o", link).exit_code == 0
    assert link.is_symlink() and (project / "src" / "plan.json").is_file()
    _check(project.parent, user)


@pytest.mark.parametrize(("name", "args"), [
    ("report.html", []), ("plan.md", []), ("manifest.json", []), ("launch", ["--export"])])
def test_a_user_file_named_like_an_output_stops_the_run_before_solving(
        project: Path, name: str, args: list[str]) -> None:
    if name == "launch":
        (project / "launch").mkdir()
        (project / "launch" / "deploy.sh").write_text("mine\n")
    else:
        (project / name).write_text("the user's own\n")
    user = attack.snapshot(project.parent)
    result = invoke("solve", FAST, "-o", project, *args)
    assert result.exit_code == 1, result.output
    assert f"{project}: -o: {name}" in result.stderr and "already exists" in result.stderr
    assert "solving" not in result.stderr  # refused before solving
    assert attack.snapshot(project.parent) == user
    if name == "launch":  # without --export, launch/ is none of paraplan's business
        assert invoke("solve", FAST, "-o", project).exit_code == 0
        _check(project.parent, user)


def test_a_plan_file_the_user_edited_stops_the_next_run(project: Path) -> None:
    assert invoke("solve", FAST, "-o", project).exit_code == 0
    (project / "plan.md").write_text("my review notes\n")
    user = attack.snapshot(project.parent)
    result = invoke("solve", FAST, "-o", project)
    assert result.exit_code == 1 and "plan.md was changed since paraplan wrote it" in result.stderr
    assert attack.snapshot(project.parent) == user


def test_a_read_only_output_folder_is_a_clear_message(project: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """As root nothing is read-only, so the permission check is made to fail; a real read-only
    folder is tried too when the tests do not run as root."""
    import solver.render.output_folder as output_folder

    if os.geteuid() != 0:
        (project / "ro").chmod(0o555)
        target = project / "ro"
    else:
        monkeypatch.setattr(output_folder, "is_writable", lambda folder: False)
        target = project / "src"
    user = attack.snapshot(project.parent)
    result = invoke("solve", FAST, "-o", target)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {target}: -o: cannot write in this folder")
    assert "Permission denied" in result.stderr and "solving" not in result.stderr
    assert attack.snapshot(project.parent) == user


# ---- -o values that must be refused --------------------------------------------------------------

BAD_O = {
    ".": "is the current folder", "": "is the current folder", "./": "is the current folder",
    "..": "is a parent of the current folder", "sub/..": "is the current folder",
    "HOME": "is the home folder", "LINK": "is a parent of the current folder",
    "FILE": "exists and is not a folder", "DANGLING": "which does not exist",
}


@pytest.mark.parametrize("kind", ["solve", "batch", "sweep"])
@pytest.mark.parametrize("value", sorted(BAD_O))
def test_bad_output_folders_are_refused_before_solving(project: Path, value: str, kind: str) -> None:
    """Run from inside the user's project: nothing anywhere under tmp_path changes."""
    os.chdir(project / "src")
    target = {"HOME": os.environ["HOME"], "LINK": "up", "FILE": "main.py",
              "DANGLING": "gone"}.get(value, value)
    if value == "LINK":
        Path("up").symlink_to(project)
    if value == "DANGLING":
        Path("gone").symlink_to("nowhere")
    user = attack.snapshot(project.parent)
    args = {"solve": ["solve", FAST], "batch": ["batch", FAST],
            "sweep": ["sweep", FAST, "--set", "workload.max_batch_size=8"]}[kind]
    result = invoke(*args, "-o", target)
    assert result.exit_code == 1, result.output
    assert ": -o: " in result.stderr and BAD_O[value] in result.stderr, result.stderr
    assert "solving" not in result.stderr and "[1/" not in result.output
    assert attack.snapshot(project.parent) == user


def test_a_filesystem_root_is_refused() -> None:
    with pytest.raises(InputError, match="-o: is the root of a filesystem"):
        check_output_folder(Path("/"))


# ---- batch and sweep -----------------------------------------------------------------------------


def test_batch_and_sweep_in_a_user_folder_then_a_second_sweep_retires_the_first(project: Path) -> None:
    user = attack.snapshot(project.parent)
    assert invoke("batch", FAST, MOE, "-o", project, "-j", "1").exit_code == 0
    _check(project.parent, user)
    sweep = ["sweep", FAST, "-o", project, "--plans", "-j", "1"]
    assert invoke(*sweep, "--set", "workload.max_batch_size=8,16").exit_code == 0
    point = project / "llama8b-l40sx2_max_batch_size=8"
    assert point.is_dir() and not (project / "llama8b-l40sx2").exists()  # the batch's plan: gone
    (point / "notes.txt").write_text("mine\n")
    user = {rel: entry for rel, entry in attack.snapshot(project.parent).items()
            if rel in user or rel.endswith("notes.txt")}
    assert invoke(*sweep, "--set", "workload.max_batch_size=32").exit_code == 0
    assert sorted(p.name for p in point.iterdir()) == ["notes.txt"]  # its plan gone, the note kept
    assert not (project / "llama8b-l40sx2_max_batch_size=16").exists()
    _check(project.parent, user)
    listed = json.loads((project / "manifest.json").read_text())["folders"]
    assert listed == ["llama8b-l40sx2_max_batch_size=32", point.name]


def test_a_user_folder_named_like_a_plan_folder_stops_the_batch(project: Path) -> None:
    (project / "llama8b-l40sx2").mkdir()
    (project / "llama8b-l40sx2" / "mine.txt").write_text("mine\n")
    user = attack.snapshot(project.parent)
    result = invoke("batch", FAST, "-o", project)
    assert result.exit_code == 1 and "llama8b-l40sx2/ already exists" in result.stderr
    assert attack.snapshot(project.parent) == user


def test_batch_of_a_missing_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", tmp_path / "nothere/", "-o", out)
    assert result.exit_code == 1 and "nothere: no such file or folder" in result.stderr
    assert not out.exists()
    result = invoke("batch", FAST, str(tmp_path / "*.nothing"), "-o", out)
    assert result.exit_code == 1 and "no file matches this pattern" in result.stderr
    assert not out.exists()


def test_batch_glob_does_not_follow_symlink_loops(tmp_path: Path) -> None:
    """loop/a -> loop and loop/b -> loop: `**` would walk 2^n paths; it must not descend at all.
    A subprocess, so that a regression fails by timeout instead of hanging the suite."""
    loop = tmp_path / "loop"
    (loop / "real").mkdir(parents=True)
    (loop / "real" / "c.yaml").write_bytes(FAST.read_bytes())
    (loop / "a").symlink_to(loop)
    (loop / "b").symlink_to(loop)
    run = subprocess.run([sys.executable, "-m", "solver.entry", "batch", f"{loop}/**/*.yaml",
                          "-o", str(tmp_path / "out"), "-j", "1"], cwd=tmp_path,
                         env=attack.environment(tmp_path), capture_output=True, text=True,
                         timeout=attack.WAIT_S)
    assert run.returncode == 0, run.stderr
    assert "batch: 1 of 1 solved" in run.stdout


def test_sweep_states_its_size_and_asks_above_a_thousand_points(tmp_path: Path) -> None:
    out = tmp_path / "out"
    values = ",".join(str(v) for v in range(1, 1002))
    result = invoke("sweep", FAST, "--set", f"workload.output_tokens={values}", "-o", out)
    assert result.exit_code == 1 and "1,001 points" in result.stderr and "--yes" in result.stderr
    assert not out.exists()
    result = invoke("sweep", FAST, "--set", "workload.max_batch_size=8,16,32", "-o", out, "-j", "1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "sweep: 3 points of llama8b-l40sx2"
    assert any(line.startswith("sweep: first point took") and "the other 2 on 1 job(s): about"
               in line for line in lines)


# ---- two and three writers at once ---------------------------------------------------------------


def test_a_second_run_on_a_busy_folder_stops_at_once(project: Path) -> None:
    """A solve holds the folder (paused after solving); batch and sweep on it fail at once with
    a message naming the folder; the paused run is then interrupted."""
    user = attack.snapshot(project.parent)
    first = attack.start(attack.Run(["solve", str(FAST), "-o", str(project)], "solved"),
                         project.parent, project.parent)
    assert attack.wait_for(first, "paraplan-test: paused"), first.stderr
    try:
        for args in (["batch", FAST], ["sweep", FAST, "--set", "workload.max_batch_size=8"],
                     ["solve", FAST]):
            result = invoke(*args, "-o", project)
            assert result.exit_code == 1, result.output
            assert f"{project}: -o: another paraplan run" in result.stderr
    finally:
        attack.send(first, signal.SIGINT)
        attack.finish(first)
    assert first.code == 130
    assert attack.snapshot(project.parent) == user


@pytest.mark.parametrize("kinds", [("solve", "batch", "sweep"), ("batch", "batch")])
def test_writers_started_together(project: Path, kinds: tuple[str, ...]) -> None:
    """Whoever wins, the others are refused with the lock message (or find the winner's files and
    take over); the user's files survive; the folder ends consistent."""
    user = attack.snapshot(project.parent)
    rng = random.Random(str(kinds))
    runs = [attack.start(attack.Run(attack.command(rng, k, str(project))), project.parent,
                         project.parent) for k in kinds]
    for run in runs:
        attack.finish(run)
        assert not attack.contract(run), run.stderr
        assert run.code in (0, 2) or "another paraplan run" in run.stderr, run.stderr
    assert any(run.code in (0, 2) for run in runs)
    _check(project.parent, user)


def test_a_sample_of_the_output_fuzzer() -> None:
    """Cases of scripts/fuzz_outputs.py (python scripts/fuzz_outputs.py --seed 2 --case I replays
    one): a solve then a sweep into the same folder, a batch racing a solve (one wins; the other is
    refused, or it takes over), and a sweep killed (SIGKILL) while writing, then a recovery run."""
    counts, broken = attack.run_cases(range(1, 4), seed=2)
    assert not broken, "\n".join(p for o in broken for p in [o.what, *o.problems])
    assert sum(counts.values()) == 3


# ---- names ---------------------------------------------------------------------------------------


def test_a_hostile_name_is_escaped_on_the_terminal_and_in_plan_md(tmp_path: Path) -> None:
    data = json.loads(json.dumps(__import__("yaml").safe_load(FAST.read_text())))
    data["name"] = "\x1b]0;pwned\x07x\x1b[2J\u202e<script>alert(1)</script>\n# Heading *bold* [a](b)"
    condition = tmp_path / "hostile.json"
    condition.write_text(json.dumps(data))
    out = tmp_path / "out"
    for args in (["solve", condition, "-o", out], ["batch", condition, "-o", tmp_path / "b"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in result.output
        assert "\\x1b]0;pwned\\x07" in result.output
    plan_md = (out / "plan.md").read_text()
    assert "<script>" not in plan_md and "&lt;script&gt;" in plan_md and "\x1b" not in plan_md
    assert not any(line.startswith("# Heading") for line in plan_md.splitlines())
    assert "\\*bold\\*" in plan_md and "\\[a\\](b)" in plan_md
    html = (out / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
