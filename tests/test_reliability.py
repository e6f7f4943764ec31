"""Writing outputs and interrupting runs (issues 7 and 10), and a huge condition under a time limit.

Signal tests never guess a delay: they wait for a line the program prints (the "solving ..." line,
or "paraplan-test: paused at NAME" from the PARAPLAN_TEST_PAUSE hook in solver/runtime/interrupts.py) and
then signal the whole process group, as a terminal's Ctrl-C does. No test asserts a duration.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
from pathlib import Path

import pytest

from solver.document.verify import violations
from solver.errors import InputError
from solver.inputs.condition import build_condition
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from solver.render.manifest import Manifest
from solver.render.output_folder import OutputInterrupted, write_outputs
from solver.render.writer import MANIFEST, TEMP_PREFIX
from tests.corpus import load_script
from tests.paths import REPO as REPO_ROOT

attack = load_script("fuzz_outputs")
ROOT = REPO_ROOT
FAST = ROOT / "conditions" / "llama8b-l40sx2.yaml"
INFEASIBLE_MEMORY = ROOT / "conditions" / "infeasible" / "llama405b-l40sx2.yaml"


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"{TEMP_PREFIX}*")]


# ---- the writer, in-process ----------------------------------------------------------------------


def test_rerun_replaces_plan_files_and_keeps_unrelated_files(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "plan.md": "old\n"})
    (out / "notes.txt").write_text("mine")
    write_outputs(out, {"plan.json": '{"new": 1}\n'})
    assert (out / "plan.json").read_text() == '{"new": 1}\n'
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "plan.json"]
    assert not _temporaries(tmp_path)


def test_new_run_drops_stale_outputs_of_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "plan.md": "old\n", "balance.csv": "x\n"})
    write_outputs(out, {"infeasibility.md": "no plan\n"})
    assert sorted(p.name for p in out.iterdir()) == ["infeasibility.md", "manifest.json"]


def test_the_manifest_owns_exactly_what_the_run_wrote(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "launch/vllm.sh": "vllm serve\n"})
    manifest = Manifest.read(out)
    assert manifest is not None and not manifest.pending
    assert set(manifest.sha256) == {"plan.json", "launch/vllm.sh"} and manifest.folders == ["launch"]
    assert manifest.owns(out, "plan.json") and manifest.owns(out, "launch/vllm.sh")
    write_outputs(out, {"plan.json": "{}\n"})  # launch/ was paraplan's: gone with its file
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "plan.json"]


def test_a_file_the_user_edited_is_never_replaced_or_removed(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "{}\n", "plan.md": "paraplan's\n"})
    (out / "plan.md").write_text("my edits\n")
    with pytest.raises(InputError, match="plan.md was changed since paraplan wrote it"):
        write_outputs(out, {"plan.md": "new\n"})
    write_outputs(out, {"plan.json": "{}\n"})  # plan.md is not written again: kept, with a note
    assert (out / "plan.md").read_text() == "my edits\n"
    notes = json.loads((out / MANIFEST).read_text())["notes"]
    assert any("plan.md" in n and "changed since paraplan wrote it" in n for n in notes)


def test_a_manifest_cannot_make_paraplan_touch_files_outside_its_folder(tmp_path: Path) -> None:
    """A manifest edited (or planted) to list ../victim.txt with its true hash, or a launch/ the
    user replaced by a symlink to their own folder: nothing outside the folder is removed."""
    import hashlib

    out, victim, mine = tmp_path / "plan", tmp_path / "victim.txt", tmp_path / "mine"
    write_outputs(out, {"plan.json": "{}\n", "launch/vllm.sh": "serve\n"})
    victim.write_text("precious\n")
    mine.mkdir()
    (mine / "vllm.sh").write_text("serve\n")  # the same content paraplan wrote
    shutil.rmtree(out / "launch")
    (out / "launch").symlink_to(mine)
    data = json.loads((out / MANIFEST).read_text())
    data["sha256"]["../victim.txt"] = hashlib.sha256(b"precious\n").hexdigest()
    data["folders"] += ["..", "../mine"]
    (out / MANIFEST).write_text(json.dumps(data))
    write_outputs(out, {"plan.json": "{}\n"})
    assert victim.read_text() == "precious\n" and (mine / "vllm.sh").read_text() == "serve\n"
    assert (out / "launch").is_symlink()


def test_failure_while_writing_leaves_the_previous_folder_intact(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (disk full) or is interrupted before the renames leaves every earlier
    file, the manifest and no temporary."""
    import solver.render.output_folder as output_folder

    out = tmp_path / "plan"
    write_outputs(out, {"plan.json": "old\n", "plan.md": "old\n"})
    before = attack.snapshot(tmp_path)
    original = output_folder.write_temporary
    for failure in (OSError(28, "No space left on device", "plan.md"), KeyboardInterrupt()):
        calls = {"n": 0}

        def flaky(folder: Path, data: bytes, failure: BaseException = failure,
                  calls: dict[str, int] = calls) -> Path:
            calls["n"] += 1
            if calls["n"] == 3:  # the pending manifest, plan.json, then plan.md fails
                raise failure
            return original(folder, data)

        monkeypatch.setattr(output_folder, "write_temporary", flaky)
        expected = InputError if isinstance(failure, OSError) else OutputInterrupted
        with pytest.raises(expected) as info:
            write_outputs(out, {"plan.json": "new\n", "plan.md": "new\n"})
        assert ("No space left" in str(info.value)) if expected is InputError else (
            "nothing was written" in info.value.account)
        monkeypatch.setattr(output_folder, "write_temporary", original)
        assert attack.snapshot(tmp_path) == before


def test_a_manifest_of_the_old_format_owns_only_unmodified_outputs(tmp_path: Path) -> None:
    """Plan folders written before manifests had hashes ({"files": [...]}) can be re-run."""
    out = tmp_path / "plan"
    out.mkdir()
    for name in ("plan.json", "plan.md", "notes.txt"):
        (out / name).write_text(f"{name}\n")
    (out / MANIFEST).write_text(json.dumps({"files": [str(out / "plan.json"), str(out / "plan.md"),
                                                      str(out / MANIFEST)]}))
    manifest = Manifest.read(out)
    assert manifest is not None and set(manifest.sha256) == {"plan.json", "plan.md"}
    write_outputs(out, {"plan.json": "new\n"})
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "plan.json"]


# ---- signals, through real processes -------------------------------------------------------------


def _interrupt(args: list[str], cwd: Path, pause: str | None, signum: int = signal.SIGINT,
               marker: str | None = None) -> attack.Run:
    """Start paraplan, wait for its marker, signal its process group, wait for the end."""
    run = attack.start(attack.Run(args, pause), cwd, cwd)
    assert attack.wait_for(run, marker or "paraplan-test: paused"), run.stderr
    attack.send(run, signum)
    return attack.finish(run)


def _assert_interrupted(run: attack.Run, message: str) -> None:
    assert run.code == 130, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr and f"interrupted: {message}" in run.stderr, run.stderr


HUGE = {
    "name": "huge",
    "model": {"name": "huge-moe", "num_hidden_layers": 128, "hidden_size": 8192,
              "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128000,
              "num_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
              "num_shared_experts": 1},
    "precision": {"weights": "fp8", "kv_cache": "fp8", "activations": "fp8"},
    "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 512, "gpus_per_node": 8},
    "workload": {"input_tokens": 4096, "output_tokens": 1024, "max_batch_size": 4096},
    "slo": {"tpot_ms": 100},
}


def test_sigint_during_a_long_solve_leaves_no_output(tmp_path: Path) -> None:
    """Ctrl-C once the solve has started (the "solving" line): exit 130, nothing written."""
    condition = tmp_path / "huge.json"
    condition.write_text(json.dumps(HUGE))
    out = tmp_path / "plan"
    run = _interrupt(["solve", str(condition), "-o", str(out)], tmp_path, None, marker="solving")
    _assert_interrupted(run, "nothing was written")
    assert not out.exists() and not _temporaries(tmp_path)


def test_sigint_during_start_up_is_quiet(tmp_path: Path) -> None:
    run = _interrupt(["schema"], tmp_path, "start-up")
    _assert_interrupted(run, "nothing was written")


@pytest.fixture()
def previous_run(tmp_path: Path) -> tuple[Path, dict]:
    """A plan folder from an earlier run, with the user's own files beside it; returns the folder
    and the snapshot of the user's files (taken before paraplan ran)."""
    out = tmp_path / "out"
    attack.prefill(out, random.Random(0), conflicts=False)
    user = attack.snapshot(tmp_path)
    first = attack.paraplan(["solve", str(FAST), "-o", str(out)], tmp_path, tmp_path)
    assert first.code == 0, first.stderr
    return out, user


def test_sigint_after_the_first_solve_exits_130(previous_run: tuple[Path, dict]) -> None:
    """The run CP-SAT used to end silently: Ctrl-C once a solve has returned."""
    out, _ = previous_run
    before = attack.snapshot(out.parent)
    run = _interrupt(["solve", str(FAST), "-o", str(out), "--export"], out.parent, "solved")
    _assert_interrupted(run, f"nothing was written; {out} is as it was")
    assert attack.snapshot(out.parent) == before


def test_sigint_during_the_relaxations_exits_130(previous_run: tuple[Path, dict]) -> None:
    """Llama-405B on two L40S: its infeasibility core takes about a second before the relaxations
    start (the 1 ms TPOT condition's, ten), and its GPU relaxation solves at least twice."""
    out, _ = previous_run
    before = attack.snapshot(out.parent)
    run = _interrupt(["solve", str(INFEASIBLE_MEMORY), "-o", str(out)], out.parent, "relaxing:2")
    _assert_interrupted(run, "nothing was written")
    assert attack.snapshot(out.parent) == before


def test_sigint_while_writing_finishes_the_folder_first(previous_run: tuple[Path, dict]) -> None:
    out, before = previous_run
    run = _interrupt(["solve", str(FAST), "-o", str(out), "--export"], out.parent, "writing")
    _assert_interrupted(run, f"{out} was written completely before stopping")
    assert (out / "launch" / "vllm.sh").is_file() and not _temporaries(out)
    assert not attack.user_changes(before, attack.snapshot(out.parent))
    assert not attack.unaccounted(out.parent, before, finished=True)


def test_sigkill_while_writing_is_recovered_by_the_next_run(previous_run: tuple[Path, dict]) -> None:
    """kill -9 between two renames: the folder mixes both runs' files, all accounted for by the
    manifest (old ones by their hashes, new ones as pending); the next run tidies up."""
    out, before = previous_run
    run = _interrupt(["solve", str(FAST), "-o", str(out), "--export"], out.parent, "writing",
                     signal.SIGKILL)
    assert run.code == -signal.SIGKILL
    assert Manifest.read(out).pending  # type: ignore[union-attr]
    assert not attack.user_changes(before, attack.snapshot(out.parent))
    assert not attack.unaccounted(out.parent, before, finished=False)
    again = attack.paraplan(["solve", str(FAST), "-o", str(out)], out.parent, out.parent)
    assert again.code == 0, again.stderr
    assert not attack.user_changes(before, attack.snapshot(out.parent))
    assert not attack.unaccounted(out.parent, before, finished=True)
    assert not (out / "launch").exists()


@pytest.mark.parametrize("kind", ["batch", "sweep"])
def test_sigint_in_batch_and_sweep_keeps_finished_plan_folders(tmp_path: Path, kind: str) -> None:
    """Ctrl-C after the second plan folder (the first from the worker pool, the third still
    solving): exit 130 naming what was kept; the workers are stopped; a re-run tidies up."""
    out = tmp_path / "out"
    attack.prefill(out, random.Random(1), conflicts=False)
    before = attack.snapshot(tmp_path)
    mixtral = ROOT / "conditions" / "mixtral8x7b-a100x4.yaml"
    args = (["batch", str(FAST), str(mixtral), str(INFEASIBLE_MEMORY)]
            if kind == "batch" else
            ["sweep", str(FAST), "--set", "workload.max_batch_size=8,16,32", "--plans"])
    args += ["-o", str(out), "-j", "2"]
    run = _interrupt(args, tmp_path, "plan-folder:2")
    _assert_interrupted(run, "2 plan folder(s) finished and were kept")
    assert not attack.user_changes(before, attack.snapshot(tmp_path))
    assert not attack.unaccounted(tmp_path, before, finished=False)
    assert len(Manifest.read(out).folders) >= 2  # type: ignore[union-attr]
    again = attack.paraplan(args, tmp_path, tmp_path)
    assert again.code in (0, 1) and "Traceback" not in again.stderr, again.stderr
    assert not attack.user_changes(before, attack.snapshot(tmp_path))
    assert not attack.unaccounted(tmp_path, before, finished=True)


# ---- a huge condition ----------------------------------------------------------------------------


def test_huge_condition_returns_a_verified_plan_within_its_limit() -> None:
    """4,096 GPUs, 256 experts, 128 layers: a verified plan (optimal or feasible with its gap)."""
    solution = solve(build_condition(HUGE, "huge", "huge"), settings=SolverSettings(time_limit_s=20))
    plan = solution.plan
    assert plan.status in ("optimal", "feasible")
    assert plan.gpus.used == plan.gpus.model_parts == 4096 == len(plan.devices)
    assert not violations(solution.checks)
