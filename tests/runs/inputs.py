"""A folder of inputs like conditions/ for the batch tests: conditions, a broken file, an infeasible
one, a GPU card, a plan file, a hidden folder and a non-condition JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from solver.inputs.loading import read_mapping
from tests.paths import REPO

CONDITIONS = REPO / "conditions"
BROKEN = REPO / "tests" / "assets" / "bad" / "malformed.yaml"
# every top-level bundled condition except the DeepSeek-V3 ones (5-15 s each, too slow here;
# scripts and the acceptance run cover `paraplan batch conditions/` whole)
QUICK = sorted(p for p in CONDITIONS.glob("*.yaml") if not p.name.startswith("deepseek"))


def make_inputs(root: Path) -> Path:
    for path in QUICK:
        shutil.copy(path, root / path.name)
    (root / "nested").mkdir()
    shutil.copy(BROKEN, root / "nested" / "broken.yaml")
    # two GPUs: the batch names its infeasibility core in about a second (Llama-70B on 8 GPUs: 12 s)
    infeasible = read_mapping(CONDITIONS / "llama8b-l40sx2.yaml")
    infeasible.update(name="llama8b-tpot-0.5ms", slo={"tpot_ms": 0.5})
    (root / "nested" / "infeasible.json").write_text(json.dumps(infeasible), encoding="utf-8")
    (root / "hardware").mkdir()
    shutil.copy(CONDITIONS / "hardware" / "h100-sxm-80gb.yaml", root / "hardware")
    plan = next((CONDITIONS / "published").glob("*.plan.yaml"))
    shutil.copy(plan, root / plan.name)
    (root / ".hidden").mkdir()
    shutil.copy(CONDITIONS / "llama70b-h100x8.yaml", root / ".hidden" / "copy.yaml")
    (root / "notes.json").write_text('{"author": "me"}', encoding="utf-8")
    return root
