#!/usr/bin/env python
"""Attack paraplan's output folders: the user's files must survive every run, signal and race.

Every case builds a folder the way a user keeps one (a `.git`, notes, sources, a read-only
subfolder, symlinks in and out, a hidden file, an old paraplan staging folder, and sometimes a
`report.html`, `plan.md` or `launch/` of the user's own), then runs `paraplan solve`, `batch` or
`sweep` into it in one of these ways:

- plain: once, or twice with different commands (a re-run retires the first run's files);
- sigint / sigkill: a signal at a named moment (the PARAPLAN_TEST_PAUSE hook: start-up, after the
  solve, during relaxations, between the renames of a plan folder, after a batch's plan folder) or
  after a random delay once the run has started, then a recovery run without a signal;
- race: two or three runs (solve, batch, sweep) started together on the same folder;
- bad -o: the current folder, '', './', '..', 'sub/..', a parent, $HOME, a symlink to a parent,
  a file.

The contract, checked after every case: every user file, folder and symlink is still there with the
same content, target and mode (counted and hashed before and after); exit codes are 0, 1 (refused,
with a message naming the folder), 2 (infeasible) or 130 (interrupted, with a message); no
traceback; after a finished run no paraplan temporary is left and manifest.json accounts for every
file paraplan wrote, with matching hashes; after a kill, only temporaries and files a manifest
lists.

    python scripts/fuzz_outputs.py --cases 40        # also: python scripts/fuzz.py --outputs
    python scripts/fuzz_outputs.py --case 7 --show   # replay one case and say what it does

Case i of seed s draws only from random.Random(f"outputs:{s}:{i}"); runs are real processes
(python -m solver.entry) in a temporary folder, with HOME pointing into it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONDITIONS = REPO / "conditions"
FAST = CONDITIONS / "llama8b-l40sx2.yaml"
FAST_MOE = CONDITIONS / "mixtral8x7b-a100x4.yaml"
INFEASIBLE = CONDITIONS / "infeasible" / "llama70b-tpot-1ms.yaml"  # runs the relaxations
TEMP_PREFIX = ".paraplan-tmp-"
PAUSE_ENV = "PARAPLAN_TEST_PAUSE"
WAIT_S = 120.0  # generous: a busy 2-core machine; no assertion depends on it


# ---- the user's folder ---------------------------------------------------------------------------


def prefill(folder: Path, rng: random.Random, conflicts: bool = True) -> list[str]:
    """Fill `folder` like a user's project; returns the names of the user's files that collide with
    what paraplan writes (a run into it must then be refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/config": b"[core]\n\tbare = false\n",
        ".git/objects/ab/cdef0123": bytes(rng.randrange(256) for _ in range(64)),
        "notes.md": b"# my notes\n",
        "src/main.py": b"print('hello')\n",
        "data/blob.bin": bytes(rng.randrange(256) for _ in range(512)),
        ".env": b"SECRET=1\n",
        ".plan.a1b2.tmp/plan.json": b"{}\n",  # a staging folder of the old paraplan: the user's now
        "ro/readme.txt": b"read only\n",
    }
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (folder / "ro").chmod(0o555)
    (folder / "link-src").symlink_to("src")
    (folder / "link-notes.md").symlink_to("notes.md")
    (folder / "dangling").symlink_to("nowhere")
    outside = folder.parent / f"{folder.name}-outside.txt"
    outside.write_bytes(b"outside\n")
    (folder / "link-outside.txt").symlink_to(outside)
    colliding = []
    if conflicts and rng.random() < 0.25:
        name = rng.choice(["report.html", "plan.md", "launch", "summary.csv"])
        if name == "launch":
            (folder / "launch").mkdir()
            (folder / "launch" / "mine.sh").write_bytes(b"echo mine\n")
        else:
            (folder / name).write_bytes(b"the user's own " + name.encode() + b"\n")
        colliding.append(name)
    return colliding


def _entry(path: Path) -> tuple[str, str, int]:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "link", os.readlink(path), 0
    if stat.S_ISDIR(info.st_mode):
        return "dir", "", stat.S_IMODE(info.st_mode)
    return "file", hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(info.st_mode)


def snapshot(root: Path) -> dict[str, tuple[str, str, int]]:
    """Every entry under `root` (not following symlinks): kind, content hash or link target, mode."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = _entry(path)
    return found


def user_changes(before: dict[str, tuple[str, str, int]],
                 after: dict[str, tuple[str, str, int]]) -> list[str]:
    """The user's entries (those in `before`) that are gone or different in `after`."""
    return [f"{rel}: {before[rel]} -> {after.get(rel, 'missing')}" for rel in sorted(before)
            if after.get(rel) != before[rel]]


def _manifests(root: Path) -> dict[Path, dict]:
    found = {}
    for path in root.rglob("manifest.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("written_by") == "paraplan":
            found[path.parent] = data
    return found


def unaccounted(root: Path, before: dict[str, tuple[str, str, int]], finished: bool) -> list[str]:
    """Files paraplan left that no manifest accounts for: after a finished run, none at all (and no
    temporary); after a kill, only temporaries. Also a listed file whose hash does not match."""
    manifests = _manifests(root)
    owned: dict[str, set[str]] = {}
    problems = []
    for folder, data in manifests.items():
        for table in ("sha256", "pending"):
            for rel, digest in data.get(table, {}).items():
                key = str((folder / rel).relative_to(root))
                owned.setdefault(key, set()).add(digest)
        for rel, digest in data.get("sha256", {}).items():
            path = folder / rel
            if finished and (not path.is_file() or _entry(path)[1] != digest):
                problems.append(f"{path}: listed with another content or missing")
    for rel, (kind, digest, _) in snapshot(root).items():
        if kind != "file" or rel in before:
            continue
        name = Path(rel).name
        if name.startswith(TEMP_PREFIX):
            if finished:
                problems.append(f"{rel}: temporary left behind")
        elif name != "manifest.json" and digest not in owned.get(rel, set()):
            problems.append(f"{rel}: not accounted for by any manifest")
    return problems


# ---- running paraplan ----------------------------------------------------------------------------


@dataclass
class Run:
    args: list[str]
    pause: str | None = None
    proc: subprocess.Popen | None = None
    stdout: str = ""
    stderr: str = ""
    code: int | None = None


def environment(home: Path, pause: str | None = None) -> dict[str, str]:
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(REPO))
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    return env


def _as_a_foreground_job() -> None:
    """In the child: SIGINT and SIGQUIT at their defaults, as a terminal's foreground job has them.
    A shell without job control starts background commands with both ignored, and a child keeps
    an ignored signal: under such a CI harness Ctrl-C would never reach paraplan (Python leaves
    an ignored SIGINT alone), and the signal tests would wait out the whole solve."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def start(run: Run, cwd: Path, home: Path) -> Run:
    """Start `python -m solver.entry ARGS` in its own session (a terminal's Ctrl-C reaches the
    whole process group: so does ours)."""
    run.proc = subprocess.Popen([sys.executable, "-m", "solver.entry", *run.args], cwd=cwd,
                                env=environment(home, run.pause), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_as_a_foreground_job)
    return run


def wait_for(run: Run, marker: str, stream: str = "stderr") -> bool:
    """Read `stream` until a line starts with `marker` (the program's own readiness line: "solving
    ..." and the pause hook on stderr, "batch: ..." and "sweep: ..." on stdout); False when the
    run ended first."""
    assert run.proc is not None
    pipe = run.proc.stderr if stream == "stderr" else run.proc.stdout
    assert pipe is not None
    seen = []
    found = False
    for line in pipe:
        seen.append(line)
        if line.startswith(marker):
            found = True
            break
    setattr(run, stream, getattr(run, stream) + "".join(seen))
    return found


def finish(run: Run) -> Run:
    assert run.proc is not None
    out, err = run.proc.communicate(timeout=WAIT_S)
    run.stdout, run.stderr, run.code = run.stdout + out, run.stderr + err, run.proc.returncode
    return run


def send(run: Run, signum: int) -> None:
    assert run.proc is not None
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(run.proc.pid, signum)


def paraplan(args: list[str], cwd: Path, home: Path, pause: str | None = None) -> Run:
    return finish(start(Run(args, pause), cwd, home))


# ---- commands and checks -------------------------------------------------------------------------


def command(rng: random.Random, kind: str, out: str) -> list[str]:
    if kind == "solve":
        condition = rng.choice([FAST, FAST, FAST_MOE, INFEASIBLE])
        return ["solve", str(condition), "-o", out, *(["--export"] if rng.random() < 0.3 else [])]
    if kind == "batch":
        return ["batch", str(FAST), str(FAST_MOE), "-o", out, "-j", rng.choice(["1", "2"])]
    return ["sweep", str(FAST), "--set", "workload.max_batch_size=8,16", "-o", out,
            "-j", rng.choice(["1", "2"]), *(["--plans"] if rng.random() < 0.6 else [])]


def contract(run: Run, interrupted: bool = False) -> list[str]:
    """Exit code and message rules of one run."""
    problems = []
    text = run.stdout + run.stderr
    if "Traceback" in text or "internal error" in text:
        problems.append(f"traceback or internal error:\n{text[-2000:]}")
    allowed = {0, 1, 2} | ({130, -signal.SIGKILL} if interrupted else set())
    if run.code not in allowed:
        problems.append(f"exit {run.code} not in {sorted(allowed)}:\n{text[-2000:]}")
    if run.code == 1 and "error:" not in run.stderr:
        problems.append(f"exit 1 without an error message:\n{text[-2000:]}")
    if run.code == 130 and "interrupted" not in run.stderr:
        problems.append(f"exit 130 without 'interrupted':\n{text[-2000:]}")
    return problems


PAUSES = {"solve": ["start-up", "solved", "writing", "relaxing"],
          "batch": ["start-up", "plan-folder", "writing"],
          "sweep": ["start-up", "plan-folder", "writing"]}


@dataclass
class Outcome:
    kind: str  # ok, refused, broken
    what: str
    problems: list[str] = field(default_factory=list)


def _attack_signal(rng: random.Random, work: Path, home: Path, out: Path,
                   kind: str) -> tuple[str, list[str]]:
    signum = rng.choice([signal.SIGINT, signal.SIGKILL])
    args = command(rng, kind, str(out))
    if kind == "solve" and rng.random() < 0.5:
        args[1] = str(INFEASIBLE)
    pause = rng.choice(PAUSES[kind]) if rng.random() < 0.7 else None
    if pause == "relaxing":
        args[1] = str(INFEASIBLE)
        pause = f"relaxing:{rng.randint(1, 3)}"
    run = start(Run(args, pause), work, home)
    if pause:
        ready = wait_for(run, "paraplan-test: paused")
    else:
        ready = (wait_for(run, "solving") if kind == "solve"
                 else wait_for(run, f"{kind}:", stream="stdout"))
    if ready and not pause:
        time.sleep(rng.uniform(0.0, 1.5))
    send(run, signum)
    finish(run)
    what = f"{signal.Signals(signum).name} {'at ' + pause if pause else 'after a random delay'}"
    problems = contract(run, interrupted=True)
    if ready and pause and signum == signal.SIGINT and run.code != 130:
        problems.append(f"SIGINT at {pause}: exit {run.code}, not 130:\n{run.stderr[-1500:]}")
    return f"{' '.join(args[:1])} {what}", problems


def _attack_race(rng: random.Random, work: Path, home: Path, out: Path) -> tuple[str, list[str]]:
    kinds = rng.sample(["solve", "batch", "sweep"], rng.choice([2, 3]))
    runs = [start(Run(command(rng, k, str(out))), work, home) for k in kinds]
    problems = []
    for run in runs:
        finish(run)
        problems += contract(run)
        if run.code == 1 and "another paraplan run" not in run.stderr and "already exists" \
                not in run.stderr and "changed since" not in run.stderr:
            problems.append(f"a racing run failed for another reason:\n{run.stderr[-1500:]}")
    return f"race {'+'.join(kinds)} -> {[r.code for r in runs]}", problems


BAD_OUTPUTS = [".", "", "./", "..", "sub/..", "PARENT", "HOME", "LINK-TO-PARENT", "FILE"]


def _attack_bad_output(rng: random.Random, work: Path, home: Path) -> tuple[str, list[str]]:
    value = rng.choice(BAD_OUTPUTS)
    cwd = work / "project"
    target = {"PARENT": str(work), "HOME": str(home), "LINK-TO-PARENT": "up",
              "FILE": "notes.md"}.get(value, value)
    if value == "LINK-TO-PARENT":
        (cwd / "up").symlink_to(work)
    kind = rng.choice(["solve", "batch", "sweep"])
    before = snapshot(work)
    run = paraplan(command(rng, kind, target), cwd, home)
    problems = contract(run) + user_changes(before, snapshot(work))
    if run.code != 1 or "-o" not in run.stderr or "solving" in run.stderr:
        problems.append(f"-o {target!r} was not refused before solving (exit {run.code}):\n"
                        f"{run.stderr[-1500:]}")
    return f"{kind} -o {value!r}", problems


def run_case(seed: int, index: int, workdir: Path) -> Outcome:
    """One attack in a fresh folder under `workdir`."""
    rng = random.Random(f"outputs:{seed}:{index}")
    work = workdir / f"case{index}"
    home = work / "home"
    home.mkdir(parents=True)
    project = work / "project"
    colliding = prefill(project, rng)
    (home / "keep.txt").write_bytes(b"home file\n")
    attack = rng.choice(["plain", "plain", "sigint-kill", "sigint-kill", "race", "bad-o"])
    try:
        if attack == "bad-o":
            what, problems = _attack_bad_output(rng, work, home)
            return Outcome("ok" if not problems else "broken", what, problems)
        out = project if rng.random() < 0.5 else project / "src"  # the user's folder or a subfolder
        before = snapshot(work)
        kind = rng.choice(["solve", "batch", "sweep"])
        finished = True
        if attack == "plain":
            first = paraplan(command(rng, kind, str(out)), work, home)
            second = paraplan(command(rng, rng.choice(["solve", "batch", "sweep"]), str(out)),
                              work, home)
            what, problems = f"{kind} then {second.args[0]}", contract(first) + contract(second)
            if out == project:
                problems += _collision_check([first, second], colliding)
        elif attack == "race":
            what, problems = _attack_race(rng, work, home, out)
        else:
            what, problems = _attack_signal(rng, work, home, out, kind)
            problems += user_changes(before, snapshot(work))
            problems += unaccounted(work, before, finished=False)
            recovery = paraplan(command(rng, kind, str(out)), work, home)
            problems += contract(recovery)
            what += f", recovery exit {recovery.code}"
        problems += user_changes(before, snapshot(work))
        problems += unaccounted(work, before, finished=finished)
    finally:
        (project / "ro").chmod(0o755)  # so the temporary folder can be removed
    return Outcome("ok" if not problems else "broken", f"{attack}: {what}", problems)


def _collision_check(runs: list[Run], colliding: list[str]) -> list[str]:
    """A run that would write a name the user's own file holds is refused, before solving."""
    problems = []
    for run in runs:
        kind, export = run.args[0], "--export" in run.args
        for name in colliding:
            refused = (name == "report.html" or (name == "plan.md" and kind == "solve")
                       or (name == "summary.csv" and kind != "solve")
                       or (name == "launch" and export))
            if refused and (run.code != 1 or "already exists" not in run.stderr
                            or "solving" in run.stderr):
                problems.append(f"{' '.join(run.args[:1])} beside the user's {name}: not refused "
                                f"before solving (exit {run.code}):\n{run.stderr[-800:]}")
    return problems


def run_cases(cases: range, seed: int, show: bool = False) -> tuple[Counter[str], list[Outcome]]:
    counts: Counter[str] = Counter()
    broken = []
    with tempfile.TemporaryDirectory(prefix="paraplan-outputs-") as tmp:
        for i in cases:
            outcome = run_case(seed, i, Path(tmp))
            counts[outcome.kind] += 1
            if show or outcome.problems:
                print(f"case {i}: {outcome.what}", file=sys.stderr)
            if outcome.problems:
                broken.append(outcome)
                for problem in outcome.problems[:10]:
                    print(f"  {problem}", file=sys.stderr)
    return counts, broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--case", type=int, default=None, help="run this one case only")
    parser.add_argument("--show", action="store_true", help="say what each case does")
    args = parser.parse_args(argv)
    cases = range(args.case, args.case + 1) if args.case is not None else range(
        args.start, args.start + args.cases)
    started = time.perf_counter()
    counts, broken = run_cases(cases, args.seed, args.show)
    print(f"{sum(counts.values())} output-folder attacks, {len(broken)} broke the contract "
          f"({time.perf_counter() - started:.1f} s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
