"""Paper deployment configs (solver/importers/paper_plans.py): graded as plans (`FILE.json#method`)
or refused with the JSON key that cannot be mapped."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import load_any_condition, load_any_plan
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
SEED = ROOT / "tests" / "assets" / "seed-formats"  # copies of the reference inputs (README there)
PAPERS = SEED / "paper-plans"
runner = CliRunner()


PAPER_CONDITIONS = ROOT / "conditions" / "paper"


def test_paper_ep_baseline_maps_with_derived_etp():
    cond = load_any_condition(PAPER_CONDITIONS / "paper-moe-4l-h100x16.yaml")
    loaded = load_any_plan(f"{PAPERS / 'EP.json'}#baseline_method", cond)
    p = loaded.plan
    assert (p.tp, p.pp, p.ep, p.etp, p.batch_size, p.layers_per_stage) == (8, 2, 4, 2, 1024, [2, 2])


def test_paper_pp_proposed_is_one_layer_per_gpu_with_notes():
    cond = load_any_condition(PAPER_CONDITIONS / "paper-dense-16l-h100x16.yaml")
    loaded = load_any_plan(PAPERS / "PP.json", cond)
    assert loaded.plan.pp == 16 and loaded.plan.layers_per_stage == [1] * 16
    assert any("SRAM" in n for n in loaded.notes)


@pytest.mark.parametrize(
    "condition,plan,code,needle",
    [
        ("paper-moe-4l-h100x16", "EP.json#baseline_method", 0, "valid"),
        ("paper-moe-4l-h100x16", "EP.json", 1, "proposed_method.parameters.expert_parallelism"),
        ("paper-dense-16l-h100x16", "PP.json", 0, "TP1 PP16"),
        ("paper-dense-16l-h100x16", "PP.json#baseline_method", 0, "TP8 PP2"),
        ("paper-dense-4l-h100x16", "SP.json", 0, "SP16"),
        ("paper-dense-4l-h100x16", "SP.json#baseline_method", 0, "TP8 PP2"),
        ("paper-dense-4l-h100x16", "helix.json", 1, "line 291: invalid JSON"),
    ],
)
def test_paper_plans_grade_or_explain(condition, plan, code, needle):
    result = runner.invoke(
        app,
        ["check", str(PAPER_CONDITIONS / f"{condition}.yaml"), str(PAPERS / plan), "--no-regret"],
    )
    assert result.exit_code == code, result.output
    assert needle in result.output


def test_paper_helix_two_level_partitioning_cannot_be_mapped(tmp_path):
    text = (PAPERS / "helix.json").read_text()
    fixed = text.replace(
        '"output_projection": "partitioned_by_head_and_dimension"\n',
        '"output_projection": "partitioned_by_head_and_dimension"\n      }\n',
        1,
    )
    path = tmp_path / "helix.json"
    path.write_text(fixed)
    cond = load_any_condition(PAPER_CONDITIONS / "paper-dense-4l-h100x16.yaml")
    with pytest.raises(InputError, match="dimension_partitions.*cannot be mapped"):
        load_any_plan(path, cond)
    baseline = load_any_plan(f"{path}#baseline_method", cond).plan
    assert (baseline.tp, baseline.pp) == (8, 2)


def test_paper_config_is_not_a_condition():
    with pytest.raises(InputError, match="is a plan"):
        load_any_condition(PAPERS / "EP.json")
