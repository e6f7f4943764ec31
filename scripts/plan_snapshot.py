"""Solve every bundled condition and write its plan files into one folder; or compare two folders.

    python scripts/plan_snapshot.py OUT            # OUT/<condition>.plan.json, .plan.md, .balance.csv
    python scripts/plan_snapshot.py --compare A B  # byte-compare two snapshots, name the differences

A restructuring keeps behaviour when the snapshots before and after are byte-identical (issue 12).
Infeasible conditions are recorded by their binding constraint families instead of a plan.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bundled_conditions() -> list[Path]:
    folders = [ROOT / "conditions", ROOT / "conditions" / "paper", ROOT / "conditions" / "published",
               ROOT / "conditions" / "infeasible", ROOT / "conditions" / "mixed"]
    return sorted(p for folder in folders for p in folder.glob("*.yaml")
                  if not p.name.endswith(".plan.yaml"))


def snapshot(out: Path) -> int:
    from solver.errors import InfeasibleError
    from solver.inputs.condition import load_condition
    from solver.planning.modes import plan_serving
    from solver.render.outputs import plan_folder_files
    from solver.render.writer import BALANCE_CSV, PLAN_JSON, PLAN_MD, dump_json

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    for path in bundled_conditions():
        name = f"{path.parent.name}-{path.stem}" if path.parent != ROOT / "conditions" else path.stem
        condition = load_condition(path.relative_to(ROOT))  # the source path is in plan.md
        try:
            # as `paraplan solve` does: every serving mode (disaggregated and auto pools, mixed
            # clusters), with the runner-up table
            solution = plan_serving(condition, with_runner_ups=True)
            files = plan_folder_files(condition, solution, False)
            files = {name: files[name] for name in (PLAN_JSON, PLAN_MD, BALANCE_CSV) if name in files}
        except InfeasibleError as exc:
            files = {"plan.json": dump_json({"infeasible": str(exc), "binding": exc.binding})}
        for file, text in files.items():
            (out / f"{name}.{file}").write_text(text, encoding="utf-8")
        print(f"{name}: {', '.join(files)}", flush=True)
    return 0


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    differ = [n for n in names if not (a / n).exists() or not (b / n).exists()
              or (a / n).read_bytes() != (b / n).read_bytes()]
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(names) - len(differ)} of {len(names)} files (plan.json, plan.md, balance.csv) "
          "byte-identical")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        if len(args.folders) != 2:
            parser.error("--compare takes two folders")
        return compare(*args.folders)
    return snapshot(args.folders[0])


if __name__ == "__main__":
    sys.exit(main())
