"""The importers' registry (solver/importers/registry.py): one list of formats, each registered once,
tried in order; every entry point (`paraplan import`, conditions, plans) dispatches through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers import registry
from solver.importers.common import Imported
from solver.importers.registry import FORMATS, condition_data, detect, import_source, load_any_plan
from solver.importers.source import Format, Source, split_method
from tests.paths import REPO

SEED = REPO / "tests" / "assets" / "seed-formats"
TRIO = SEED / "json-trio"
PAPERS = SEED / "paper-plans"
HF = REPO / "tests" / "hf_configs"
runner = CliRunner()


def test_each_format_is_registered_once_and_paraplan_files_come_last():
    names = [f.name for f in FORMATS]
    assert names == ["markdown", "trio", "paper", "hf-config", "condition"]
    assert FORMATS[-1].recognizes(Source(Path("anything.yaml")))
    for f in FORMATS:
        assert f.yields in ("condition", "plan", "model"), f.name
        assert (f.yields == "condition") == (not f.not_a_condition), f.name


@pytest.mark.parametrize(
    "path,name",
    [
        (SEED / "markdown" / "qwen3-235b-ttft.md", "markdown"),
        (TRIO, "trio"),
        (TRIO / "hardware_env.json", "trio"),
        (TRIO / "model_params.json", "trio"),  # a Hugging Face config beside hardware_env.json
        (TRIO / "performance_requirements.json", "condition"),
        (PAPERS / "EP.json", "paper"),
        (HF / "mixtral-8x7b" / "config.json", "hf-config"),
        (REPO / "conditions" / "llama70b-h100x8.yaml", "condition"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_detect_names_the_format_that_reads_a_source(path, name):
    assert detect(path) == name


def test_source_names_and_method_suffix():
    assert split_method("EP.json#baseline_method") == ("EP.json", "baseline_method")
    assert split_method("EP.json") == ("EP.json", None)
    assert Source(HF / "mixtral-8x7b" / "config.json").default_name == "mixtral-8x7b"
    assert Source(SEED / "markdown" / "qwen3-235b-ttft.md").default_name == "qwen3-235b-ttft"
    assert Source(SEED / "markdown" / "qwen3-235b-ttft.md").json is None
    assert Source(PAPERS / "EP.json").json["paper"]


def test_a_new_format_is_one_registration(tmp_path, monkeypatch):
    """A format added to FORMATS is detected, imported, and read as a condition or refused."""
    path = tmp_path / "cluster.toy"
    path.write_text("toy")
    toy = Format(
        name="toy",
        yields="model",
        recognizes=lambda s: s.path.suffix == ".toy",
        read=lambda s: Imported(source=str(s.path), kind="model", data={"name": s.default_name}),
        not_a_condition="a toy is not a condition",
    )
    monkeypatch.setattr(registry, "FORMATS", (toy, *FORMATS))
    assert detect(path) == "toy"
    assert import_source(path).data == {"name": "cluster"}
    with pytest.raises(InputError, match="a toy is not a condition"):
        condition_data(path)
    as_condition = dataclasses.replace(toy, yields="condition", not_a_condition="")
    monkeypatch.setattr(registry, "FORMATS", (as_condition, *FORMATS))
    assert condition_data(path) == ({"name": "cluster"}, str(path), "cluster")


def test_missing_sources_are_named():
    with pytest.raises(InputError, match="file not found"):
        import_source(SEED / "nowhere.md")
    with pytest.raises(InputError, match="file not found"):
        condition_data(SEED / "nowhere.md")
    with pytest.raises(InputError, match="no 'Parallelism Strategy' section"):
        load_any_plan(SEED / "markdown" / "qwen3-235b-ttft.md")


# ---- CLI: import and solve any source ------------------------------------------------------------


def test_cli_import_writes_atomic_yaml_that_solves(tmp_path):
    out = tmp_path / "trio.yaml"
    result = runner.invoke(app, ["import", str(TRIO), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "assumed:" in result.output
    assert not list(tmp_path.glob(".*.tmp"))
    result = runner.invoke(
        app, ["solve", str(out), "-o", str(tmp_path / "plan"), "--time-limit", "10"]
    )
    assert result.exit_code == 0, result.output
    plan_md = (tmp_path / "plan" / "plan.md").read_text()
    assert "Assumed by the importer" in plan_md and "target_requests_per_second" in plan_md


def test_cli_solve_accepts_markdown_directly(tmp_path):
    result = runner.invoke(
        app,
        [
            "solve",
            str(SEED / "markdown" / "qwen3-235b-ttft.md"),
            "-o",
            str(tmp_path / "q"),
            "--time-limit",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "interconnect not stated" in (tmp_path / "q" / "plan.md").read_text()


def test_cli_import_unknown_format(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1 and "not recognized" in result.output
