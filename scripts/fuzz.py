#!/usr/bin/env python
"""Fuzz paraplan's input handling with a seeded mutator of the bundled conditions.

Every case takes a bundled condition (conditions/*.yaml), applies one to three random mutations
(delete / rename / add a key, replace a value by a hostile one, change a value's type, inline a card
and mutate it, duplicate a section, insert junk bytes, truncate the text, ...) and feeds the result
to paraplan. The contract: a case either loads (solves) or fails with a ParaplanError, exit code 1
and a message naming the file; never another exception, never a traceback, never an output folder
after a failure.

    python scripts/fuzz.py                      # 10,000 library-level cases (load_condition)
    python scripts/fuzz.py --cli --cases 300    # through `paraplan solve`, time limit 1 s
    python scripts/fuzz.py --seed 7 --case 123 --show   # replay one case, print its input
    python scripts/fuzz.py --outputs --cases 40  # attack output folders (scripts/fuzz_outputs.py):
                                                 # pre-filled folders, bad -o, signals, races

Case i of seed s is generated from random.Random(f"{s}:{i}") alone, so any case replays by itself.
Exit status 0 when every case kept the contract, 1 otherwise (the failing inputs are printed and,
with --save DIR, written to DIR).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CONDITIONS_DIR = REPO / "conditions"
MODELS_DIR = REPO / "models"
HARDWARE_DIR = CONDITIONS_DIR / "hardware"

# Conditions that solve in well under a second: the CLI-level sample draws from these.
FAST_CONDITIONS = ("llama8b-l40sx2", "llama70b-h100x8", "mixtral8x7b-a100x4",
                   "qwen3-30b-a3b-h100x2", "gpt-oss-120b-h100x4")

_NAMES = [p.stem for p in sorted(MODELS_DIR.glob("*.yaml"))] + [
    p.stem for p in sorted(HARDWARE_DIR.glob("*.yaml"))]

HOSTILE_VALUES: list[Any] = [
    -1, 0, -0.0, -1e9, 1e-320, 0.5, 1.5, 7, 3, 1e30, -1e30, 10**30, 2**63, 2**64 + 1, 10**400,
    math.nan, math.inf, -math.inf,
    True, False, None,
    "", " ", "8", "1e3", "nan", "ünïcødé ☃ \u202eevil", "x" * 300, "\t", "fp7", "bf16", "int4",
    "../../etc/passwd", "/etc/passwd", "..", ".hidden", "a/b", "C:\\windows\\system32",
    "uniform", "zipf",
    [], [0], [1, 2], [-1], [1.5], ["a"], [[1, 2], [3]], [None], [math.nan],
    {}, {"a": 1}, {"name": "x"}, {"distribution": "zipf", "alpha": 1e9},
]

JUNK: list[bytes] = [
    b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x1b[31m", b"\x07", b"\t", b"\r", b"\n",
    b":", b": :", b"- ", b"{", b"}", b"[", b"]", b"'", b'"', b"#", b"&a ", b"*a", b"<<: ", b"? ",
    b"!!python/object/apply:os.system ['true'] ", b"!!binary aGk= ", b"!!set ", b"--- ", b"...",
    b"%YAML 1.1\n", b"\xef\xbb\xbf", b"\xe2\x80\xae", "☃".encode(), b"%", b"@", b"`", b"|", b">",
]


@dataclass
class Case:
    index: int
    base: str
    mutations: list[str]
    content: bytes
    suffix: str  # ".yaml" or ".json"


@dataclass
class Outcome:
    kind: str  # "ok", "input_error", "infeasible", "other_exit", "crash", "contract"
    detail: str = ""


# ------------------------------------------------------------------------------------------------
# the mutator


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path (dict keys and list indexes) in a parsed document."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(prefix + (i,))
            out += _paths(value, prefix + (i,))
    return out


def _mappings(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _mappings(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _mappings(value, prefix + (i,))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _typo(rng: random.Random, word: str) -> str:
    word = str(word)
    if not word:
        return "x"
    i = rng.randrange(len(word))
    kind = rng.randrange(6)
    if kind == 0:  # drop a character
        return word[:i] + word[i + 1:] or "x"
    if kind == 1 and len(word) > 1:  # swap two neighbours
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 2:  # insert one
        return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz_-.") + word[i:]
    if kind == 3:
        return word.upper()
    if kind == 4:
        return word + rng.choice(["s", "_", " ", "2"])
    return rng.choice(["", " ", "??", "ключ", "\u202e", "1", "null", "true", "<<"]) + word


def _hostile_value(rng: random.Random, current: Any) -> Any:
    roll = rng.random()
    if roll < 0.55:
        return copy.deepcopy(rng.choice(HOSTILE_VALUES))
    if roll < 0.75:  # change the type, keep the meaning
        if isinstance(current, bool):
            return rng.choice(["yes", 1, "true", [current]])
        if isinstance(current, int):
            return rng.choice([str(current), float(current), [current], {"value": current},
                               current + 0.5, -current, current * 10**rng.randrange(1, 8)])
        if isinstance(current, float) and math.isfinite(current):
            return rng.choice([str(current), int(current), [current], current * 1e6, -current])
        if isinstance(current, str):
            return rng.choice([[current], {current: 1}, current.upper(), _typo(rng, current), 42])
        if isinstance(current, list):
            return rng.choice([current[:1], current * 3, current[::-1], {"items": current},
                               current + [current[-1] if current else 1]])
        if isinstance(current, dict):
            return rng.choice([list(current.values()), list(current), str(current), None])
        return rng.choice(HOSTILE_VALUES)
    if roll < 0.9:  # a (possibly misspelled) card name
        name = rng.choice(_NAMES)
        return name if rng.random() < 0.5 else _typo(rng, name)
    return rng.randrange(-3, 70)


def _inline_card(rng: random.Random, data: dict[str, Any]) -> str:
    """Replace the model or GPU card name by the card's data (inline), so it gets mutated too."""
    if rng.random() < 0.5 and isinstance(data.get("model"), str):
        path = MODELS_DIR / f"{data['model']}.yaml"
        if path.is_file():
            data["model"] = yaml.safe_load(path.read_text(encoding="utf-8"))
            return "inline model card"
    hardware = data.get("hardware")
    if isinstance(hardware, dict) and isinstance(hardware.get("gpu"), str):
        path = HARDWARE_DIR / f"{hardware['gpu']}.yaml"
        if path.is_file():
            hardware["gpu"] = yaml.safe_load(path.read_text(encoding="utf-8"))
            return "inline GPU card"
    return "inline (nothing to inline)"


def _mutate_data(rng: random.Random, data: dict[str, Any]) -> str:
    """One structural mutation of the parsed document, in place; returns its description."""
    paths = _paths(data)
    op = rng.choice(["delete", "value", "value", "value", "rename", "add", "duplicate", "inline",
                     "toggle", "expert_load", "scale", "scale"])
    if op == "scale":  # a plausible but unusual number: exercises the solver, not just validation
        numeric = [q for q in paths if isinstance(_get(data, q), (int, float))
                   and not isinstance(_get(data, q), bool)]
        if numeric:
            q = rng.choice(numeric)
            factor = rng.choice([0.01, 0.1, 0.5, 2, 3, 10, 100])
            value = _get(data, q) * factor
            _get(data, q[:-1])[q[-1]] = max(1, round(value)) if isinstance(_get(data, q), int) \
                else value
            return f"scale {q} x{factor}"
        op = "value"
    if op == "inline":
        return _inline_card(rng, data)
    if op == "toggle":  # the either/or rules: batch_size vs max_batch_size, num_nodes vs max_gpus
        section, a, b = rng.choice([("workload", "batch_size", "max_batch_size"),
                                    ("hardware", "num_nodes", "max_gpus")])
        target = data.get(section)
        if isinstance(target, dict):
            target[rng.choice([a, b])] = rng.choice([1, 2, 8, 64, 0, -1])
        return f"toggle {section}.{a}/{b}"
    if op == "expert_load":
        target = data.setdefault("workload", {})
        if isinstance(target, dict):
            target["expert_load"] = rng.choice([
                {"distribution": rng.choice(["uniform", "zipf", "pareto"]), "alpha": rng.choice(
                    [0.5, 1.2, 0, -1, 1e9])},
                [rng.choice([0, 1, 2.5, -1]) for _ in range(rng.choice([0, 1, 8, 128]))],
                [[1.0] * rng.choice([8, 128]) for _ in range(rng.choice([1, 2, 48]))],
            ])
        return "expert_load"
    if op == "add" or not paths:
        holder_path = rng.choice(_mappings(data))
        holder = _get(data, holder_path)
        key = rng.choice([_typo(rng, rng.choice(list(holder) or ["name"])), "extra", "ключ", "1"])
        holder[key] = _hostile_value(rng, None)
        return f"add {holder_path + (key,)}"
    path = rng.choice(paths)
    parent, last = _get(data, path[:-1]), path[-1]
    if op == "delete":
        del parent[last]
        return f"delete {path}"
    if op == "rename" and isinstance(parent, dict):
        new = _typo(rng, last)
        parent[new] = parent.pop(last)
        return f"rename {path} -> {new!r}"
    if op == "duplicate" and isinstance(data, dict) and data:
        src, dst = rng.choice(list(data)), rng.choice(list(data) + ["copy"])
        data[dst] = copy.deepcopy(data[src])
        return f"duplicate section {src} -> {dst}"
    parent[last] = _hostile_value(rng, parent[last])
    return f"value {path} = {parent[last]!r}"[:120]


def _mutate_text(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    """One byte-level mutation: junk, truncation, duplicated / deleted / re-indented lines."""
    op = rng.choice(["junk", "junk", "truncate", "dup_line", "dup_block", "del_line", "indent",
                     "flip"])
    if not raw:
        return rng.choice(JUNK), "junk into empty"
    if op == "junk":
        at = rng.randrange(len(raw) + 1)
        junk = rng.choice(JUNK) if rng.random() < 0.7 else bytes(
            rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        return raw[:at] + junk + raw[at:], f"junk {junk!r} at {at}"
    if op == "truncate":
        at = rng.randrange(len(raw))
        return raw[:at], f"truncate at {at}"
    if op == "flip":
        at = rng.randrange(len(raw))
        return raw[:at] + bytes([raw[at] ^ (1 << rng.randrange(8))]) + raw[at + 1:], f"flip at {at}"
    lines = raw.split(b"\n")
    i = rng.randrange(len(lines))
    if op == "dup_line":
        lines.insert(i, lines[i])
        return b"\n".join(lines), f"duplicate line {i + 1}"
    if op == "dup_block":  # a top-level section and what follows it, repeated at the end
        starts = [k for k, line in enumerate(lines) if line[:1].isalpha()]
        if starts:
            s = rng.choice(starts)
            e = next((k for k in starts if k > s), len(lines))
            return b"\n".join(lines + lines[s:e]), f"duplicate section at line {s + 1}"
    if op == "del_line":
        del lines[i]
        return b"\n".join(lines), f"delete line {i + 1}"
    lines[i] = b" " * rng.choice([1, 2, 3, 4, 8]) + lines[i]
    return b"\n".join(lines), f"indent line {i + 1}"


def _dump(rng: random.Random, data: Any) -> tuple[bytes, str]:
    if rng.random() < 0.15:
        return json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8"), ".json"
    flow = rng.choice([None, False, True])
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=rng.random() < 0.5,
                          default_flow_style=flow, width=rng.choice([80, 10_000]))
    return text.encode("utf-8"), ".yaml"


def make_case(seed: int, index: int, bases: list[Path] | None = None) -> Case:
    """Case `index` of `seed`: deterministic, independent of every other case."""
    rng = random.Random(f"{seed}:{index}")
    base = rng.choice(bases or sorted(CONDITIONS_DIR.glob("*.yaml")))
    raw = base.read_bytes()
    mutations: list[str] = []
    suffix = ".yaml"
    if rng.random() < 0.8:  # structural mutations on the parsed data, then dumped again
        data = yaml.safe_load(raw)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            try:
                mutations.append(_mutate_data(rng, data))
            except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
                # the path vanished or the value cannot be scaled: fine, skip it
                mutations.append(f"(skipped: {type(exc).__name__})")
        raw, suffix = _dump(rng, data)
    if not mutations or rng.random() < 0.35:
        for _ in range(rng.choice([1, 1, 2])):
            raw, what = _mutate_text(rng, raw)
            mutations.append(what)
    return Case(index, base.stem, mutations, raw, suffix)


def describe(case: Case, limit: int = 1500) -> str:
    shown = case.content.decode("utf-8", "backslashreplace")
    if len(shown) > limit:
        shown = shown[:limit] + f"... ({len(case.content)} bytes)"
    return (f"case {case.index} (base {case.base}{case.suffix}): {'; '.join(case.mutations)}\n"
            f"----- input -----\n{shown}\n-----------------")


# ------------------------------------------------------------------------------------------------
# running cases


def run_library_case(case: Case, workdir: Path) -> Outcome:
    """load_condition on the case's file: it loads, or raises a ParaplanError naming the file."""
    from solver.errors import ParaplanError
    from solver.inputs.condition import load_condition

    path = workdir / f"case{case.index}{case.suffix}"
    path.write_bytes(case.content)
    try:
        load_condition(path)
    except ParaplanError as exc:
        if path.name not in str(exc):
            return Outcome("contract", f"message does not name the file: {exc}")
        return Outcome("input_error")
    except Exception:  # noqa: BLE001 - that is the finding
        return Outcome("crash", traceback.format_exc())
    finally:
        path.unlink(missing_ok=True)
    return Outcome("ok")


def run_cli_case(case: Case, workdir: Path, time_limit: float = 1.0) -> Outcome:
    """`paraplan solve` through CliRunner: exit 0/1/2, no traceback, no output folder on failure."""
    from click.testing import CliRunner

    from solver.cli import app

    path = workdir / f"case{case.index}{case.suffix}"
    out = workdir / f"out{case.index}"
    path.write_bytes(case.content)
    try:
        result = CliRunner().invoke(app, ["solve", str(path), "-o", str(out), "--time-limit",
                                          str(time_limit), "--workers", "1"])
    finally:
        path.unlink(missing_ok=True)
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        return Outcome("crash", tb)
    if "Traceback" in text or "internal error" in text:
        return Outcome("crash", text)
    if result.exit_code not in (0, 1, 2):
        return Outcome("other_exit", f"exit {result.exit_code}: {text}")
    if result.exit_code != 0:
        written = {p.name for p in out.iterdir()} if out.is_dir() else set()
        allowed = {"infeasibility.md", "manifest.json"} if result.exit_code == 2 else set()
        if out.exists() and not written <= allowed:
            return Outcome("contract", f"exit {result.exit_code} but {out} holds {sorted(written)}")
        _remove_tree(out)
        if result.exit_code == 1 and path.name not in text:
            return Outcome("contract", f"message does not name the file: {text}")
        return Outcome("input_error" if result.exit_code == 1 else "infeasible")
    _remove_tree(out)
    return Outcome("ok")


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def run(cases: range, seed: int, runner: Callable[[Case, Path], Outcome],
        bases: list[Path] | None = None,
        ) -> tuple[Counter[str], list[tuple[Case, Outcome]], tuple[float, int]]:
    """Run the cases; returns outcome counts, the failures and (seconds, index) of the slowest."""
    counts: Counter[str] = Counter()
    failures: list[tuple[Case, Outcome]] = []
    slowest = (0.0, -1)
    with tempfile.TemporaryDirectory(prefix="paraplan-fuzz-") as tmp:
        for i in cases:
            case = make_case(seed, i, bases)
            started = time.perf_counter()
            outcome = runner(case, Path(tmp))
            slowest = max(slowest, (time.perf_counter() - started, i))
            counts[outcome.kind] += 1
            if outcome.kind in ("crash", "contract", "other_exit"):
                failures.append((case, outcome))
    return counts, failures, slowest


def summary(counts: Counter[str], seconds: float, slowest: tuple[float, int]) -> str:
    total = sum(counts.values())
    return (f"{total} cases, {counts['crash']} tracebacks, {counts['contract']} contract breaches, "
            f"{counts['other_exit']} other exit codes, {counts['ok']} ok, "
            f"{counts['input_error']} input errors, {counts['infeasible']} infeasible "
            f"({seconds:.1f} s; slowest: case {slowest[1]}, {slowest[0] * 1000:.0f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="number of cases (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="index of the first case")
    parser.add_argument("--case", type=int, default=None, help="run this one case only")
    parser.add_argument("--cli", action="store_true",
                        help="go through `paraplan solve` (solves the valid ones; slower)")
    parser.add_argument("--time-limit", type=float, default=1.0, help="CP-SAT limit with --cli")
    parser.add_argument("--show", action="store_true", help="print each case's input")
    parser.add_argument("--save", type=Path, default=None, help="write failing inputs here")
    parser.add_argument("--outputs", action="store_true",
                        help="attack output folders instead (scripts/fuzz_outputs.py)")
    args = parser.parse_args(argv)
    if args.outputs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import fuzz_outputs

        return fuzz_outputs.main([f"--cases={args.cases if args.cases != 10_000 else 40}",
                                  f"--seed={args.seed}", f"--start={args.start}",
                                  *([f"--case={args.case}"] if args.case is not None else []),
                                  *(["--show"] if args.show else [])])

    indexes = range(args.case, args.case + 1) if args.case is not None else range(
        args.start, args.start + args.cases)
    bases = None
    if args.cli:
        bases = [CONDITIONS_DIR / f"{n}.yaml" for n in FAST_CONDITIONS
                 if (CONDITIONS_DIR / f"{n}.yaml").is_file()] or None
    if args.show:
        for i in indexes:
            print(describe(make_case(args.seed, i, bases), limit=100_000))

    def runner(case: Case, workdir: Path) -> Outcome:
        if args.cli:
            return run_cli_case(case, workdir, args.time_limit)
        return run_library_case(case, workdir)

    started = time.perf_counter()
    counts, failures, slowest = run(indexes, args.seed, runner, bases)
    for case, outcome in failures[:20]:
        print(f"\n=== {outcome.kind.upper()} ===\n{describe(case)}\n{outcome.detail}",
              file=sys.stderr)
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"seed{args.seed}-case{case.index}{case.suffix}").write_bytes(case.content)
    if len(failures) > 20:
        print(f"... and {len(failures) - 20} more failures", file=sys.stderr)
    print(summary(counts, time.perf_counter() - started, slowest))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
