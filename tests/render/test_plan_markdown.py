"""plan.md and the plan folder: the renderers format the numbers the planner computed, and build
no cost model of their own."""

from __future__ import annotations

import dataclasses

import pytest

import solver.physics.cost as cost
from solver.inputs.condition import load_condition
from solver.inputs.model_error import error_band
from solver.physics.evaluate import Metrics
from solver.physics.shapes import ParallelShape
from solver.planning.planner import Solution, solve
from solver.planning.runner_ups import RunnerUp
from solver.render.markdown import runner_up_row, signed_change, why_it_lost
from solver.render.outputs import plan_folder_files
from solver.render.plan_markdown import plan_markdown
from solver.render.writer import LAUNCH_FILES, PLAN_FILES, launch_path
from tests.paths import REPO


@pytest.fixture(scope="module")
def solved() -> tuple[object, Solution]:
    condition = load_condition(REPO / "conditions" / "llama70b-h100x8.yaml")
    return condition, solve(condition, with_runner_ups=True)


def test_rendering_builds_no_cost_model(solved, monkeypatch: pytest.MonkeyPatch) -> None:
    condition, solution = solved

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a renderer built a CostModel")

    monkeypatch.setattr(cost.CostModel, "__init__", refuse)
    files = plan_folder_files(condition, solution, export=True)
    assert list(files) == [*PLAN_FILES, *map(launch_path, LAUNCH_FILES)]


def test_plan_md_shows_the_runner_ups_it_is_given(solved) -> None:
    condition, solution = solved
    metrics = Metrics(ttft_s=0.25, tpot_s=0.0125, e2e_latency_s=4.0, throughput_tokens_per_s=100.0,
                      throughput_tokens_per_s_per_gpu=12.5, objective=9.0)
    given = (RunnerUp("tp+pp", "", ParallelShape(tp=4, pp=2), 16, None, (0, 40, 80), metrics, 9.0,
                      objective_ratio=1.5, throughput_per_gpu_ratio=0.5, e2e_ratio=1.02),
             RunnerUp("tp+sp", "infeasible: memory does not fit (3 of 3 candidates)"))
    markdown = plan_markdown(condition, dataclasses.replace(solution, runner_ups=given))
    assert ("| tp+pp | TP4 PP2 DP1 | 16 | 250.000 | 12.500 | 12.500 | 9.000 | objective +50%, "
            "throughput/GPU -50%, e2e +2.0% |") in markdown
    assert ("| tp+sp | - | - | - | - | - | - | infeasible: memory does not fit (3 of 3 candidates) |"
            in markdown)
    without = plan_markdown(condition, dataclasses.replace(solution, runner_ups=None))
    assert "Best plan of every other shape family" not in without


def test_why_it_lost_names_only_what_is_worse() -> None:
    better_latency = RunnerUp("tp", "", objective_ratio=1.004, throughput_per_gpu_ratio=1.2, e2e_ratio=0.9)
    assert why_it_lost(better_latency) == "objective +0.4%"
    assert signed_change(0.5) == "-50%" and signed_change(1.05) == "+5.0%"
    assert runner_up_row(RunnerUp("ep", "not computed: --time-limit reached"))[-1] == (
        "not computed: --time-limit reached")


def test_plan_md_names_an_imported_model_and_prints_no_raw_mapping(tmp_path) -> None:
    """Before: `| model | {'name': 'mixtral', 'num_hidden_layers': 32, ...} |`, named after the
    config's folder."""
    import shutil

    from solver.importers.registry import load_any_condition

    (tmp_path / "hf").mkdir()
    shutil.copy(REPO / "tests" / "hf_configs" / "mixtral-8x7b" / "config.json", tmp_path / "hf")
    path = tmp_path / "c.yaml"
    path.write_text("model: hf/config.json\nhardware: {gpu: a100-sxm-80gb, num_nodes: 1, gpus_per_node: 4}\n"
                    "workload: {input_tokens: 1024, output_tokens: 256, max_batch_size: 32}\n")
    condition = load_any_condition(path)
    text = plan_markdown(condition, solve(condition))
    assert "{'name'" not in text and "'num_hidden_layers'" not in text
    assert "| model | inline model card mixtral-46.7b, imported from " in text
    assert "## Model: mixtral-46.7b (inline card, imported from " in text


def test_a_winner_inside_the_model_error_is_not_called_proven(tmp_path) -> None:
    """Qwen3-30B-A3B on 2 x H100: runner-ups within a few % against a ~12% held-out error. plan.md, the
    console and report.html say "optimal for the cost model, a close call", and what decides."""
    from click.testing import CliRunner

    from solver.cli import app
    from solver.render.plan_page import plan_html

    condition = load_condition(REPO / "conditions" / "qwen3-30b-a3b-h100x2.yaml")
    solution = solve(condition, with_runner_ups=True)
    text = plan_markdown(condition, solution)
    status = next(line for line in text.splitlines() if "Status:" in line)
    stated = f"±{error_band('qwen3-30b-a3b', True, 'h100-sxm-80gb').fraction:.1%}"
    assert "optimal for the cost model — a close call" in status and stated in status
    assert f"CLOSE CALL (within the {stated} model error): measure both" in text
    html = plan_html(condition, solution)
    assert 'id="runner-ups"' in html and 'class="close-call"' in html and 'class="close"' in html
    run = CliRunner().invoke(app, ["solve", str(REPO / "conditions" / "qwen3-30b-a3b-h100x2.yaml"),
                                   "-o", str(tmp_path / "out")])
    assert run.exit_code == 0 and "a close call:" in run.stdout


def test_a_clear_winner_keeps_its_plain_status() -> None:
    # Llama-8B on 2 x L40S: TP1 x DP2 wins, the nearest rival (TP2) is 20% behind
    condition = load_condition(REPO / "conditions" / "llama8b-l40sx2.yaml")
    solution = solve(condition, with_runner_ups=True)
    text = plan_markdown(condition, solution)
    assert "Status: **optimal** (cp-sat)." in text and "close call" not in text.split("##")[0]
    assert "| tp | TP2 PP1 DP1 |" in text
