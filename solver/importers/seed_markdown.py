"""Import the markdown condition files of the seed (tests/assets/seed-formats/markdown).

Layout: `## **Section**` headings, then `* **Field**: value` bullets. Sections read: Environment
Condition, Model Configuration, Input Data, Basic Performance Requirements and, when present,
Parallelism Strategy (imported as a short plan for `paraplan check`). Every bullet must be
understood: an unknown field or an unreadable value is an InputError quoting the line.

The layout is parsed by seed_markdown_sections.py; the sections are read by
seed_markdown_environment.py, seed_markdown_model.py and seed_markdown_workload.py; this module
assembles the condition and reads the strategy.
"""

from __future__ import annotations

from solver.errors import InputError
from solver.importers.common import Imported, origin
from solver.importers.seed_markdown_environment import read_environment
from solver.importers.seed_markdown_model import check_params, read_model, read_precision
from solver.importers.seed_markdown_sections import (
    Line,
    SectionReader,
    parse_sections,
    refuse_huge_numbers,
)
from solver.importers.seed_markdown_workload import read_requirements, read_workload
from solver.importers.source import Format, Source
from solver.inputs.loading import read_text

# ---- Parallelism Strategy -> short plan ----------------------------------------------------------

_DEGREES = (
    ("etp", (r"expert tensor",)),
    ("attn_dp", (r"attention data", r"attention dp")),
    ("tp", (r"tensor",)),
    ("pp", (r"pipeline",)),
    ("dp", (r"^data", r"data parallel")),
    ("ep", (r"expert",)),
    ("sp", (r"sequence", r"context parallel")),
)


def _strategy(imp: Imported, lines: list[Line], batch: int | None) -> Imported:
    plan = Imported(source=imp.source, kind="plan")
    r = SectionReader(plan, "Parallelism Strategy", lines)
    total = r.find(r"^(gpus?|npus?|cards?)( count| number| total)?$", r"total (gpus|npus)")
    for name, patterns in _DEGREES:
        line = r.find(*patterns)
        if line is not None:
            plan.put(name, r.integer(line), r.origin(line))
    if not plan.data:
        raise InputError(imp.source, "Parallelism Strategy", "no parallel degree found")
    if batch is not None:
        plan.put("batch_size", batch, "the Input Data batch size")
    r.finish()
    if total is not None:
        stated = r.integer(total)
        d = plan.data
        stage = d.get("tp", 1) * d.get("attn_dp", 1) * d.get("sp", 1)
        implied = d.get("dp", 1) * d.get("pp", 1) * stage
        plan.read_only.append(
            f"{origin(imp.source, total.number, total.text)}: {stated} GPUs stated; the "
            f"degrees give dp x pp x tp x attn_dp x sp = {implied}"
            + ("" if implied == stated else " (they disagree: check grades the degrees)")
        )
    return plan


# ---- entry point ---------------------------------------------------------------------------------


def import_markdown(text: str, source: str, default_name: str) -> Imported:
    refuse_huge_numbers(text, source)
    sections = parse_sections(text, source)
    for needed in ("environment", "model", "input"):
        if needed not in sections:
            title = {
                "environment": "Environment Condition",
                "model": "Model Configuration",
                "input": "Input Data",
            }[needed]
            raise InputError(source, "", f"no '{title}' section")
    imp = Imported(source=source, kind="condition")
    imp.data = {
        "name": default_name,
        "model": {},
        "precision": {},
        "hardware": {"gpu": {}},
        "workload": {},
    }
    imp.origins["name"] = "the file name"
    compute = read_precision(imp, sections["model"])
    environment = SectionReader(imp, "Environment Condition", sections["environment"])
    read_environment(imp, environment, compute)
    read_model(imp, SectionReader(imp, "Model Configuration", sections["model"]), default_name)
    read_workload(imp, SectionReader(imp, "Input Data", sections["input"]))
    if "requirements" in sections:
        section = SectionReader(imp, "Basic Performance Requirements", sections["requirements"])
        read_requirements(imp, section)
    if "strategy" in sections:
        imp.plan = _strategy(imp, sections["strategy"], imp.get("workload.batch_size"))
    check_params(imp)
    return imp


# ---- the format ----------------------------------------------------------------------------------


def recognizes(source: Source) -> bool:
    return not source.path.is_dir() and source.path.suffix.lower() in (".md", ".markdown")


def read_markdown(source: Source) -> Imported:
    return import_markdown(read_text(source.path), str(source.path), source.path.stem)


def strategy_plan(source: Source) -> Imported:
    """The Parallelism Strategy section as a short plan, for `paraplan check`."""
    plan = read_markdown(source).plan
    if plan is None:
        raise InputError(str(source.path), "", "no 'Parallelism Strategy' section: nothing to check")
    return plan


FORMAT = Format(
    name="markdown", yields="condition", recognizes=recognizes, read=read_markdown, plan=strategy_plan
)
